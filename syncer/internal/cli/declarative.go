package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

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

// fetchState reads every stored API and policy (and key, see fetchKeys).
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
	orgs, err := c.listAll(ctx, "/v1/orgs")
	if err != nil {
		return nil, err
	}
	for _, raw := range orgs {
		var o model.Org
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("decode stored org: %w", err)
		}
		cur.Orgs = append(cur.Orgs, o)
	}
	cur.Normalize()
	return cur, nil
}

// fetchKeys adds every stored key to cur in the declarative form (its
// hash, never a value) and returns how many client certificate records it
// left out: they are not declarative.
func fetchKeys(ctx context.Context, c *client, cur *declarative.File) (int, error) {
	raws, err := c.listAll(ctx, "/v1/keys")
	if err != nil {
		return 0, err
	}
	certs := 0
	for _, raw := range raws {
		var k model.Key
		if err := json.Unmarshal(raw, &k); err != nil {
			return 0, fmt.Errorf("decode stored key: %w", err)
		}
		if k.Certificate != nil {
			certs++
			continue
		}
		cur.Keys = append(cur.Keys, declarative.KeyOf(&k))
	}
	cur.KeysSet = true
	cur.Normalize()
	return certs, nil
}

// inputs is the desired configuration read from every -f, merged, with
// the file and line of every field path of the merged document.
type inputs struct {
	file  declarative.File
	where map[string]string // apis[3].listen_path -> "a.yaml:12"
	names []string
}

// expand turns the -f arguments into files: a directory stands for its
// *.yaml, *.yml and *.json files, sorted by name.
func expand(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, usageErrorf("-f FILE is required (a file, a directory, or - for stdin; repeatable)")
	}
	var out []string
	for _, a := range args {
		if a == "-" {
			out = append(out, a)
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", a, err)
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", a, err)
		}
		n := 0
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					out, n = append(out, filepath.Join(a, e.Name())), n+1
				}
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json file in the directory", a)
		}
	}
	return out, nil
}

var indexRE = regexp.MustCompile(`^(apis|policies|orgs|keys)\[(\d+)\]`)

// readInputs parses, resolves ${env:NAME} in and validates every file,
// then the merged whole. Every problem names its file, line and field.
func (r *run) readInputs(args []string) (*inputs, error) {
	names, err := expand(args)
	if err != nil {
		return nil, err
	}
	in := &inputs{where: map[string]string{}, names: names}
	var problems validation.Errors
	for _, name := range names {
		var data []byte
		if name == "-" {
			data, err = r.readInput("-")
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		f, err := declarative.ParseWith(data, r.env.LookupEnv)
		var perrs validation.Errors
		if errors.As(err, &perrs) {
			for _, p := range perrs {
				problems = append(problems, located(name, p))
			}
			continue
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		offsets := map[string]int{"apis": len(in.file.APIs), "policies": len(in.file.Policies), "orgs": len(in.file.Orgs), "keys": len(in.file.Keys)}
		for path, line := range declarative.Lines(data) {
			if m := indexRE.FindStringSubmatch(path); m != nil {
				i, _ := strconv.Atoi(m[2])
				path = validation.Index(m[1], i+offsets[m[1]]) + path[len(m[0]):]
			}
			in.where[path] = name + ":" + strconv.Itoa(line)
		}
		in.file.APIs = append(in.file.APIs, f.APIs...)
		in.file.Policies = append(in.file.Policies, f.Policies...)
		in.file.Orgs = append(in.file.Orgs, f.Orgs...)
		in.file.Keys = append(in.file.Keys, f.Keys...)
		in.file.KeysSet = in.file.KeysSet || f.KeysSet
	}
	if len(problems) == 0 {
		problems = in.locate(in.file.Validate())
	}
	if len(problems) > 0 {
		return nil, in.refused(problems)
	}
	return in, nil
}

// lineRE matches the "line N: " a parse problem starts with.
var lineRE = regexp.MustCompile(`^line (\d+): `)

// located puts the file and line of a parse problem in front of it.
func located(name string, p validation.Problem) validation.Problem {
	loc := name
	if m := lineRE.FindStringSubmatch(p.Message); m != nil {
		loc += ":" + m[1]
		p.Message = p.Message[len(m[0]):]
	}
	if p.Field == "" {
		p.Field = loc
	} else {
		p.Field = loc + ": " + p.Field
	}
	return p
}

// locate prefixes each problem with the file and line of its field (or
// the nearest enclosing one).
func (in *inputs) locate(errs validation.Errors) validation.Errors {
	out := make(validation.Errors, len(errs))
	for i, p := range errs {
		out[i] = p
		for path := p.Field; path != ""; path = parentPath(path) {
			if loc, ok := in.where[path]; ok {
				out[i].Field = loc + ": " + p.Field
				break
			}
		}
	}
	return out
}

func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

func (in *inputs) refused(problems validation.Errors) error {
	return problemsError{msg: fmt.Sprintf("%s: %d problem(s); nothing was written", strings.Join(in.names, ", "), len(problems)), problems: problems}
}

// applyRequest is the body of POST /v1/apply.
type applyRequest struct {
	APIs     []model.API    `json:"apis"`
	Policies []model.Policy `json:"policies"`
	Orgs     []model.Org    `json:"orgs,omitempty"`
	// Keys is set when a file has a keys section: hashes only.
	Keys      *[]declarative.Key `json:"keys,omitempty"`
	Prune     bool               `json:"prune,omitempty"`
	DryRun    bool               `json:"dry_run,omitempty"`
	SelectTag string             `json:"select_tag,omitempty"`
}

// applyResult is its answer.
type applyResult struct {
	DryRun      bool              `json:"dry_run"`
	BaseVersion int64             `json:"base_version"`
	Version     int64             `json:"version"`
	Plan        *declarative.Plan `json:"plan"`
	// SecretsUnchecked: the token may not write, so secrets were not compared.
	SecretsUnchecked bool `json:"secrets_unchecked"`
}

// send asks the syncer to plan (dry run) or apply the inputs. Problems the
// syncer finds are reported at the file and line of their field.
func (r *run) send(ctx context.Context, in *inputs, prune, dryRun bool, tag string) (*applyResult, error) {
	return r.sendTo(ctx, "/v1/apply", in, prune, dryRun, tag)
}

// sendTo is send to path: /v1/apply, or /v1/plan (a dry run any role that
// reads the configuration may ask for: diff works with a viewer's token).
func (r *run) sendTo(ctx context.Context, path string, in *inputs, prune, dryRun bool, tag string) (*applyResult, error) {
	c, err := r.admin()
	if err != nil {
		return nil, err
	}
	req := applyRequest{APIs: in.file.APIs, Policies: in.file.Policies, Orgs: in.file.Orgs, Prune: prune, DryRun: dryRun, SelectTag: tag}
	if req.APIs == nil {
		req.APIs = []model.API{}
	}
	if req.Policies == nil {
		req.Policies = []model.Policy{}
	}
	if in.file.KeysSet {
		keys := in.file.Keys
		if keys == nil {
			keys = []declarative.Key{}
		}
		req.Keys = &keys
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, req)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest && len(ae.Details) > 0 {
		return nil, in.refused(in.locate(ae.Details))
	}
	if err != nil {
		return nil, err
	}
	var res applyResult
	if err := json.Unmarshal(resp.Body, &res); err != nil || res.Plan == nil {
		return nil, fmt.Errorf("POST %s: unexpected answer: %s", path, truncate(resp.Body))
	}
	if !r.g.showSecrets {
		maskPlan(res.Plan)
	}
	return &res, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func (r *run) applyCommand() *cobra.Command {
	var files []string
	var prune, dryRun bool
	var tag string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR [-f ...]",
		Short: "make stored APIs, policies and keys match the files, all or nothing",
		Long: `Make the stored APIs, policies and keys match the files. The files are read and
validated first (every problem with its file, line and field; nothing is
written). The syncer then plans the change against the stored state and
writes it in one atomic step (POST /v1/apply): one config version, all of
it or, if anything fails or changed meanwhile, none of it. The plan is
printed: + create, ~ update (with the fields that change), - delete.
Values written ${env:NAME} are read from the environment. Keys are managed
only when a file has a keys section; a key's value is given as
key: ${env:NAME} (sent as its SHA-256, never in clear) or hash: SHA256.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := r.readInputs(files)
			if err != nil {
				return err
			}
			res, err := r.send(cmd.Context(), in, prune, dryRun, tag)
			if err != nil {
				return err
			}
			if r.g.output == "json" {
				return printJSON(r.env.Stdout, res)
			}
			res.Plan.Print(r.env.Stdout)
			switch {
			case dryRun:
				fmt.Fprintf(r.env.Stdout, "dry run: nothing written (config version %d)\n", res.BaseVersion)
			case !res.Plan.Empty():
				fmt.Fprintf(r.env.Stdout, "applied %d change(s) in config version %d\n", len(res.Plan.Actions), res.Version)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "declarative file or directory of files (YAML or JSON; - for stdin); repeatable")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete stored APIs and policies (and keys, when the files have a keys section) that are not in the files")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "ask the syncer for the plan and write nothing")
	cmd.Flags().StringVar(&tag, "select-tag", "", "manage only objects with this tag: every object of the files must carry it; stored objects without it are left alone (also by --prune)")
	return cmd
}

func (r *run) diffCommand() *cobra.Command {
	var files []string
	var prune, asJSON bool
	var tag string
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR [-f ...]",
		Short: "print what apply would change; exit 2 when there are differences",
		Long: `Print the plan that 'apply' would carry out (the syncer plans it with
POST /v1/plan; nothing is written, and a viewer's token is enough):
+ create, ~ update (with the fields that change), - delete (with --prune).
Secret values are masked unless --show-secrets. A token that may not write
the configuration gets a plan that does not compare secrets at all (a
note on stderr says so).

Exit codes: 0 the stored state matches the files, 2 there are
differences, 1 an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := r.readInputs(files)
			if err != nil {
				return err
			}
			res, err := r.sendTo(cmd.Context(), "/v1/plan", in, prune, true, tag)
			if err != nil {
				return err
			}
			if res.SecretsUnchecked {
				fmt.Fprintln(r.env.Stderr, "note: secrets were not compared: this token may not write the configuration")
			}
			if asJSON || r.g.output == "json" {
				if res.Plan.Actions == nil {
					res.Plan.Actions = []declarative.Action{}
				}
				err = printJSON(r.env.Stdout, res.Plan)
			} else {
				res.Plan.Print(r.env.Stdout)
			}
			if err == nil && !res.Plan.Empty() {
				return errDrift
			}
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "declarative file or directory of files (YAML or JSON; - for stdin); repeatable")
	cmd.Flags().BoolVar(&prune, "prune", false, "plan to delete stored APIs and policies (and keys, when the files have a keys section) that are not in the files")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON (same as -o json)")
	cmd.Flags().StringVar(&tag, "select-tag", "", "compare only objects with this tag (as apply --select-tag)")
	return cmd
}

func (r *run) exportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export [--out FILE]",
		Short: "write stored APIs, policies and keys in the declarative format",
		Long: `Write the stored APIs, policies and keys in the declarative format, sorted
by id, so that applying the export changes nothing. Keys are written with
their hash (never a value); client certificate records are left out.

The format is YAML unless -o json, or the --out file ends in .json
(-o FILE is read as --out FILE). Secrets are never written in clear
unless --show-secrets: each is written as a reference ${env:NAME}
resolved by apply, and the variables to set are listed on stderr.`,
		Args: cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if !isFormat(r.g.output) && out == "" {
				out, r.g.output = r.g.output, "table"
			}
			return r.checkOutput()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.export(cmd.Context(), out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write to FILE instead of stdout")
	return cmd
}

func (r *run) export(ctx context.Context, out string) error {
	c, err := r.admin()
	if err != nil {
		return err
	}
	cur, err := fetchState(ctx, c)
	if err != nil {
		return err
	}
	var refs []string
	if !r.g.showSecrets {
		if refs, err = referenceSecrets(cur); err != nil {
			return err
		}
	}
	certs, err := fetchKeys(ctx, c, cur)
	if err != nil {
		return err
	}
	if certs > 0 {
		fmt.Fprintf(r.env.Stderr, "export: %d client certificate key(s) not exported (manage them with sluicectl keys)\n", certs)
	}
	asJSON := r.g.output == "json" || (r.g.output == "table" && strings.EqualFold(filepath.Ext(out), ".json"))
	var data []byte
	if asJSON {
		data, err = declarative.MarshalJSON(cur)
	} else {
		data, err = declarative.Marshal(cur)
	}
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		sort.Strings(refs)
		fmt.Fprintf(r.env.Stderr, "export: %d secret(s) written as ${env:NAME} references; set %s before apply (--show-secrets writes them in clear)\n", len(refs), strings.Join(refs, ", "))
	}
	if out == "" || out == "-" {
		_, err = r.env.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Fprintf(r.env.Stderr, "exported %d APIs, %d policies and %d keys to %s\n", len(cur.APIs), len(cur.Policies), len(cur.Keys), out)
	return nil
}

func isFormat(s string) bool { return s == "table" || s == "json" || s == "yaml" }
