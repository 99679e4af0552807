package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/model"
)

// resource describes one collection of the admin API.
type resource struct {
	name   string // "apis"
	kind   string // "api"
	path   string // "/v1/apis"
	header []string
	// decode reads one stored object (JSON) for the table and YAML output.
	decode func(data []byte) (any, error)
	row    func(obj any) []string
}

func decodeAs[T any](data []byte) (any, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return v, nil
}

func resources() []*resource {
	return []*resource{
		{
			name: "apis", kind: "api", path: "/v1/apis",
			header: []string{"ID", "NAME", "LISTEN PATH", "HOSTS", "AUTH", "TARGETS", "RATE LIMIT"},
			decode: decodeAs[model.API],
			row: func(o any) []string {
				a := o.(*model.API)
				return []string{a.ID, a.Name, a.ListenPath, join(a.Hosts), a.Auth.Mode, join(a.Upstream.Targets), fmtLimit(a.RateLimit)}
			},
		},
		{
			name: "policies", kind: "policy", path: "/v1/policies",
			header: []string{"ID", "NAME", "APIS", "RATE LIMIT", "QUOTA"},
			decode: decodeAs[model.Policy],
			row: func(o any) []string {
				p := o.(*model.Policy)
				apis := make([]string, len(p.Access))
				for i, ar := range p.Access {
					apis[i] = ar.API
				}
				return []string{p.ID, p.Name, join(apis), fmtLimit(p.RateLimit), fmtQuota(p.Quota)}
			},
		},
		{
			name: "orgs", kind: "org", path: "/v1/orgs",
			header: []string{"ID", "NAME", "RATE LIMIT", "QUOTA"},
			decode: decodeAs[model.Org],
			row: func(o any) []string {
				g := o.(*model.Org)
				return []string{g.ID, g.Name, fmtLimit(g.RateLimit), fmtQuota(g.Quota)}
			},
		},
		{
			name: "keys", kind: "key", path: "/v1/keys",
			header: []string{"ID", "ALIAS", "HASH", "POLICIES", "RATE LIMIT", "QUOTA", "EXPIRES", "DISABLED", "CREATED"},
			decode: decodeAs[model.Key],
			row: func(o any) []string {
				k := o.(*model.Key)
				hash := k.Hash
				if c := k.Certificate; c != nil {
					hash = "cert:" + c.Fingerprint // what openssl x509 -fingerprint -sha256 shows
				}
				if len(hash) > 12 {
					hash = hash[:12]
				}
				return []string{k.ID, k.Alias, hash, join(k.Policies), fmtLimit(k.RateLimit), fmtQuota(k.Quota),
					fmtTime(k.ExpiresAt), yesNo(k.Disabled), fmtTime(&k.CreatedAt)}
			},
		},
	}
}

// article is "a" or "an" before the resource kind.
func (res *resource) article() string {
	switch res.kind {
	case "api":
		return "an API"
	case "org":
		return "an org"
	}
	return "a " + res.kind
}

func (res *resource) commands() []command {
	cmds := []command{
		{name: res.name + " list", summary: "list " + res.name, run: res.list},
		{name: res.name + " get", args: "ID", summary: "show " + res.article(), run: res.get},
		{name: res.name + " create", args: "[-f FILE]", summary: "create " + res.article() + " from JSON or YAML (-f FILE, or stdin)", run: res.create},
		{name: res.name + " update", args: "ID [-f FILE]", summary: "replace " + res.article() + " from JSON or YAML (-f FILE, or stdin)", run: res.update},
		{name: res.name + " delete", args: "ID...", summary: "delete " + res.name, run: res.del},
	}
	if res.kind == "key" {
		cmds[2].summary = "create a key (flags, or JSON/YAML from -f FILE); prints the key once"
		cmds[3].summary = "change a key's policies, alias, expiry or state (flags, or -f FILE)"
		cmds = append(cmds, command{name: "keys rotate", args: "ID", summary: "give a key a new value; the old one stops working", run: cmdKeysRotate})
	}
	return cmds
}

// print writes objects (raw JSON from the API) in the chosen format.
func (r *run) printObjects(res *resource, raws []json.RawMessage, single bool) error {
	w := r.env.Stdout
	if !r.g.showSecrets {
		for i := range raws {
			raws[i] = maskJSON(raws[i])
		}
	}
	if r.g.output == "json" {
		if single && len(raws) == 1 {
			return printJSON(w, raws[0])
		}
		if raws == nil {
			raws = []json.RawMessage{}
		}
		return printJSON(w, raws)
	}
	objs := make([]any, len(raws))
	for i, raw := range raws {
		o, err := res.decode(raw)
		if err != nil {
			return err
		}
		objs[i] = o
	}
	if r.g.output == "yaml" {
		if single && len(objs) == 1 {
			return printYAML(w, objs[0])
		}
		return printYAML(w, objs)
	}
	rows := make([][]string, len(objs))
	for i, o := range objs {
		rows[i] = res.row(o)
	}
	return table(w, res.header, rows)
}

func (res *resource) list(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet(res.name+" list", "", "List every stored "+res.kind+".")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	items, err := c.listAll(ctx, res.path)
	if err != nil {
		return err
	}
	return r.printObjects(res, items, false)
}

func (res *resource) get(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet(res.name+" get", "ID", "Show "+res.article()+".")
	pos, err := r.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodGet, objectPath(res.path, pos[0]), nil, nil)
	if err != nil {
		return err
	}
	etag := resp.Header.Get("ETag")
	if r.g.output == "table" {
		if err := r.printObjects(res, []json.RawMessage{resp.Body}, true); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "ETag: %s\n", etag)
		return nil
	}
	// JSON and YAML carry the ETag as a field: update -f takes it back as
	// --if-match.
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.UseNumber() // integers stay exact
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	obj["etag"] = etag
	body, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if !r.g.showSecrets {
		body = maskJSON(body)
	}
	if r.g.output == "json" {
		return printJSON(r.env.Stdout, json.RawMessage(body))
	}
	var generic any
	_ = json.Unmarshal(body, &generic)
	return printYAML(r.env.Stdout, generic)
}

// takeETag removes a top-level "etag" field (as get -o json|yaml prints
// it) from a JSON or YAML document, returning the document as JSON and the
// ETag. A document without one is returned as it is.
func takeETag(data []byte) ([]byte, string) {
	var doc map[string]any
	if yaml.Unmarshal(data, &doc) != nil || doc == nil {
		return data, ""
	}
	etag, ok := doc["etag"].(string)
	if !ok {
		return data, ""
	}
	delete(doc, "etag")
	out, err := json.Marshal(doc)
	if err != nil {
		return data, ""
	}
	return out, etag
}

// readInput reads -f FILE ("-" or empty: stdin).
func (r *run) readInput(file string) ([]byte, error) {
	var data []byte
	var err error
	if file == "" || file == "-" {
		data, err = io.ReadAll(io.LimitReader(r.env.Stdin, 16<<20))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, usageErrorf("no input: give -f FILE or pipe a JSON or YAML document on stdin")
	}
	return data, nil
}

// decodeDoc reads a JSON or YAML document strictly (unknown fields are an
// error) into dst.
func decodeDoc(data []byte, dst any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf("read JSON: %w", err)
		}
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("read YAML: %w", err)
	}
	return nil
}

// newObject returns a new empty API, policy or org to decode input into.
func (res *resource) newObject() any {
	switch res.kind {
	case "api":
		return &model.API{}
	case "org":
		return &model.Org{}
	}
	return &model.Policy{}
}

func objectID(o any) *string {
	switch t := o.(type) {
	case *model.API:
		return &t.ID
	case *model.Policy:
		return &t.ID
	case *model.Org:
		return &t.ID
	}
	return nil
}

func (res *resource) create(ctx context.Context, r *run, args []string) error {
	if res.kind == "key" {
		return cmdKeysCreate(ctx, r, args)
	}
	fs := r.flagSet(res.name+" create", "[-f FILE]", "Create "+res.article()+" from a JSON or YAML document (-f FILE, or stdin).")
	file := fs.String("f", "", "file with the "+res.kind+" (JSON or YAML; - for stdin)")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	data, err := r.readInput(*file)
	if err != nil {
		return err
	}
	obj := res.newObject()
	if err := decodeDoc(data, obj); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, res.path, nil, obj)
	if err != nil {
		return err
	}
	return r.printObjects(res, []json.RawMessage{resp.Body}, true)
}

func (res *resource) update(ctx context.Context, r *run, args []string) error {
	if res.kind == "key" {
		return cmdKeysUpdate(ctx, r, args)
	}
	fs := r.flagSet(res.name+" update", "ID [-f FILE]", "Replace "+res.article()+" with a JSON or YAML document (-f FILE, or stdin); creates it if absent.")
	file := fs.String("f", "", "file with the "+res.kind+" (JSON or YAML; - for stdin)")
	ifMatch := fs.String("if-match", "", "only update if the stored "+res.kind+" still has this ETag (default: the etag field of the document, as get -o json|yaml prints it)")
	pos, err := r.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	data, err := r.readInput(*file)
	if err != nil {
		return err
	}
	data, docETag := takeETag(data)
	if *ifMatch == "" {
		*ifMatch = docETag
	}
	obj := res.newObject()
	if err := decodeDoc(data, obj); err != nil {
		return err
	}
	if id := objectID(obj); *id == "" {
		*id = pos[0]
	} else if *id != pos[0] {
		return usageErrorf("%s update: the document's id %q differs from the argument %q", res.name, *id, pos[0])
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPut, objectPath(res.path, pos[0]), map[string]string{"If-Match": *ifMatch}, obj)
	if err != nil {
		return err
	}
	return r.printObjects(res, []json.RawMessage{resp.Body}, true)
}

func (res *resource) del(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet(res.name+" delete", "ID...", "Delete one or more "+res.name+".")
	ifMatch := fs.String("if-match", "", "only delete if the stored "+res.kind+" still has this ETag (one ID only)")
	pos, err := r.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *ifMatch != "" && len(pos) > 1 {
		return usageErrorf("%s delete: --if-match takes a single ID", res.name)
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	for _, id := range pos {
		if _, err := c.do(ctx, http.MethodDelete, objectPath(res.path, id), map[string]string{"If-Match": *ifMatch}, nil); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "deleted %s %s\n", res.kind, id)
	}
	return nil
}

// stringList is a repeatable, comma-separated flag.
type stringList struct {
	vals []string
	set  bool
}

func (s *stringList) String() string { return strings.Join(s.vals, ",") }

// Type names the value in the help.
func (s *stringList) Type() string { return "strings" }

func (s *stringList) Set(v string) error {
	s.set = true
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			s.vals = append(s.vals, p)
		}
	}
	return nil
}
