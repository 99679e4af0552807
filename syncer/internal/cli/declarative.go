package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

// problemsError is a refused file: every problem is listed.
type problemsError struct {
	msg      string
	problems validation.Errors
}

func (e problemsError) Error() string { return e.msg }

func collection(kind string) string {
	if kind == declarative.KindAPI {
		return "/v1/apis"
	}
	return "/v1/policies"
}

// fetchState reads every stored API and policy.
func fetchState(ctx context.Context, c *client) (*declarative.File, error) {
	cur := &declarative.File{}
	apis, err := c.listAll(ctx, "/v1/apis")
	if err != nil {
		return nil, err
	}
	for _, raw := range apis {
		var a model.API
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("decode stored API: %w", err)
		}
		cur.APIs = append(cur.APIs, a)
	}
	pols, err := c.listAll(ctx, "/v1/policies")
	if err != nil {
		return nil, err
	}
	for _, raw := range pols {
		var p model.Policy
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode stored policy: %w", err)
		}
		cur.Policies = append(cur.Policies, p)
	}
	cur.Normalize()
	return cur, nil
}

// readFile parses and validates a declarative file on its own.
func (r *run) readFile(name string) (*declarative.File, validation.Errors, error) {
	if name == "" {
		return nil, nil, usageErrorf("-f FILE is required (- for stdin)")
	}
	var data []byte
	var err error
	if name == "-" {
		data, err = r.readInput("-")
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	f, err := declarative.Parse(data)
	var perrs validation.Errors
	if errors.As(err, &perrs) {
		return nil, perrs, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, f.Validate(), nil
}

// plan reads the file and the stored state, validates the file against
// both and returns the plan, its ETags read from the admin API. Nothing
// is written.
func (r *run) plan(ctx context.Context, c *client, name string, prune bool) (*declarative.Plan, error) {
	f, problems, err := r.readFile(name)
	if err != nil {
		return nil, err
	}
	cur, ferr := fetchState(ctx, c)
	if len(problems) > 0 || f == nil {
		if ferr == nil && f != nil {
			problems = append(problems, f.CheckAgainst(cur, prune)...)
		}
		return nil, problemsError{msg: fmt.Sprintf("%s: %d problem(s); nothing was written", name, len(problems)), problems: problems}
	}
	if ferr != nil {
		return nil, ferr
	}
	if problems := f.CheckAgainst(cur, prune); len(problems) > 0 {
		return nil, problemsError{msg: fmt.Sprintf("%s: %d problem(s); nothing was written", name, len(problems)), problems: problems}
	}
	p, err := declarative.MakePlan(f, cur, prune)
	if err != nil {
		return nil, err
	}
	// Read the ETag of every object the plan changes: writes are made with
	// If-Match, so a concurrent change fails instead of being overwritten.
	// The diff is made again against the object read with its ETag, in
	// case it changed since it was listed.
	kept := p.Actions[:0]
	for _, a := range p.Actions {
		if a.Op != declarative.OpCreate {
			resp, err := c.do(ctx, http.MethodGet, objectPath(collection(a.Kind), a.ID), nil, nil)
			if err != nil {
				return nil, fmt.Errorf("read %s %s: %w", a.Kind, a.ID, err)
			}
			a.ETag = resp.Header.Get("ETag")
			if a.Op == declarative.OpUpdate {
				if a.Changes, err = rediff(a, resp.Body); err != nil {
					return nil, err
				}
				if len(a.Changes) == 0 {
					continue
				}
			}
		}
		kept = append(kept, a)
	}
	p.Actions = kept
	return p, nil
}

// rediff compares the desired object of an update with the stored body.
func rediff(a declarative.Action, body []byte) ([]declarative.FieldChange, error) {
	var cur any = &model.API{}
	if a.Kind == declarative.KindPolicy {
		cur = &model.Policy{}
	}
	if err := json.Unmarshal(body, cur); err != nil {
		return nil, fmt.Errorf("decode stored %s %s: %w", a.Kind, a.ID, err)
	}
	return declarative.Diff(cur, a.Object)
}

func (r *run) declarativeFlags(name, summary string) (*flag.FlagSet, *string) {
	fs := r.flagSet(name, "-f FILE", summary)
	file := fs.String("f", "", "declarative file (YAML or JSON; - for stdin)")
	return fs, file
}

func cmdDiff(ctx context.Context, r *run, args []string) error {
	fs, file := r.declarativeFlags("diff", "Print the plan that 'apply' would carry out: + create, ~ update (with the fields that change), - delete (with --prune). Writes nothing.")
	prune := fs.Bool("prune", false, "plan to delete stored APIs and policies that are not in the file")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	p, err := r.plan(ctx, c, *file, *prune)
	if err != nil {
		return err
	}
	if r.g.output == "json" {
		return printJSON(r.env.Stdout, p)
	}
	p.Print(r.env.Stdout)
	return nil
}

func cmdApply(ctx context.Context, r *run, args []string) error {
	fs, file := r.declarativeFlags("apply", "Make the stored APIs and policies match the file. The file is validated first (every problem is listed, nothing is written), then the plan is printed and carried out: APIs before policies on create and update, policies before APIs on delete. Updates and deletes carry the ETag read while planning.")
	prune := fs.Bool("prune", false, "delete stored APIs and policies that are not in the file")
	dryRun := fs.Bool("dry-run", false, "print the plan and stop")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	p, err := r.plan(ctx, c, *file, *prune)
	if err != nil {
		return err
	}
	p.Print(r.env.Stdout)
	if *dryRun || p.Empty() {
		return nil
	}
	for i, a := range p.Actions {
		if err := applyAction(ctx, c, a); err != nil {
			return fmt.Errorf("%s %s %s failed after %d of %d changes: %w", a.Op, a.Kind, a.ID, i, len(p.Actions), err)
		}
		fmt.Fprintf(r.env.Stdout, "%sd %s %s\n", a.Op, a.Kind, a.ID)
	}
	fmt.Fprintf(r.env.Stdout, "applied %d change(s)\n", len(p.Actions))
	return nil
}

func applyAction(ctx context.Context, c *client, a declarative.Action) error {
	path := objectPath(collection(a.Kind), a.ID)
	var err error
	switch a.Op {
	case declarative.OpCreate:
		_, err = c.do(ctx, http.MethodPost, collection(a.Kind), nil, a.Object)
	case declarative.OpUpdate:
		_, err = c.do(ctx, http.MethodPut, path, map[string]string{"If-Match": a.ETag}, a.Object)
	case declarative.OpDelete:
		_, err = c.do(ctx, http.MethodDelete, path, map[string]string{"If-Match": a.ETag}, nil)
	}
	return err
}

func cmdExport(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("export", "[--out FILE]", "Write the stored APIs and policies in the declarative format, sorted by id, so that applying the export changes nothing. Keys are not exported.")
	out := fs.String("out", "", "write to FILE instead of stdout (-o FILE is accepted too)")
	// -o is the output format elsewhere; for export it names the file
	// unless it is a format name.
	if _, err := r.parse(fs, exportArgs(args), 0, 0); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	cur, err := fetchState(ctx, c)
	if err != nil {
		return err
	}
	var data []byte
	if r.g.output == "json" {
		if cur.APIs == nil {
			cur.APIs = []model.API{}
		}
		if cur.Policies == nil {
			cur.Policies = []model.Policy{}
		}
		b, err := json.MarshalIndent(cur, "", "  ")
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		data = append(b, '\n')
	} else if data, err = declarative.Marshal(cur); err != nil {
		return err
	}
	if *out == "" || *out == "-" {
		_, err = r.env.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	fmt.Fprintf(r.env.Stderr, "exported %d APIs and %d policies to %s\n", len(cur.APIs), len(cur.Policies), *out)
	return nil
}

// exportArgs turns "-o FILE" into "--out FILE" when FILE is not an output
// format, so 'sluicectl export -o sluice.yaml' writes the file.
func exportArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a == "-o" || a == "--o") && i+1 < len(args) && !isFormat(args[i+1]) {
			out = append(out, "--out", args[i+1])
			i++
			continue
		}
		if v, ok := strings.CutPrefix(a, "-o="); ok && !isFormat(v) {
			out = append(out, "--out", v)
			continue
		}
		out = append(out, a)
	}
	return out
}

func isFormat(s string) bool { return s == "table" || s == "json" || s == "yaml" }
