package declarative

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func fields(errs validation.Errors) []string {
	out := make([]string, len(errs))
	for i, p := range errs {
		out[i] = p.Field
	}
	return out
}

func TestParseValidFile(t *testing.T) {
	t.Parallel()
	f, err := Parse(mustRead(t, "testdata/valid.yaml"))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(f.APIs) != 2 || len(f.Policies) != 2 {
		t.Fatalf("got %d apis, %d policies", len(f.APIs), len(f.Policies))
	}
	if got := f.APIs[0].Upstream.ReadTimeout.D().String(); got != "5s" {
		t.Errorf("read_timeout = %s", got)
	}
	if f.Policies[0].Quota == nil || f.Policies[0].Quota.Renewal.D().Hours() != 720 {
		t.Errorf("quota = %+v", f.Policies[0].Quota)
	}
	if errs := f.Validate(); len(errs) > 0 {
		t.Errorf("valid file has problems: %v", errs)
	}
}

func TestParseProblemsHavePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string // field paths, in order
	}{
		{"unknown field in api", "apis:\n  - id: a\n    listen_path: /a/\n    upstrem: {}\n", []string{"apis[0].upstrem"}},
		{"unknown nested field", "apis:\n  - id: a\n    upstream:\n      targts: [x]\n", []string{"apis[0].upstream.targts"}},
		{"problems in two items", "apis:\n  - id: a\n    foo: 1\n  - id: b\n    bar: 2\npolicies:\n  - id: p\n    baz: 3\n",
			[]string{"apis[0].foo", "apis[1].bar", "policies[0].baz"}},
		{"wrong type", "apis:\n  - id: a\n    hosts: 3\n", []string{"apis[0].hosts"}},
		{"bad duration", "policies:\n  - id: p\n    rate_limit: {rate: 1, per: soon}\n", []string{"policies[0]"}},
		{"unknown top-level", "apis: []\nroutes: []\n", []string{"routes"}},
		{"clear key value refused", "keys:\n  - id: k\n    policies: [p]\n    key: sk_live_0123456789abcdef\n", []string{"keys[0].key"}},
		{"key value not a scalar", "keys:\n  - id: k\n    key: {a: b}\n", []string{"keys[0].key", "keys[0].key.a"}},
		{"unknown field in key", "keys:\n  - id: k\n    secret: x\n", []string{"keys[0].secret"}},
		{"keys not a list", "keys: {id: k}\n", []string{"keys"}},
		{"apis not a list", "apis: {id: a}\n", []string{"apis"}},
		{"not a mapping", "- a\n- b\n", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in))
			var errs validation.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want validation.Errors", err)
			}
			if got := fields(errs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fields = %q, want %q (%v)", got, tt.want, errs)
			}
			for _, p := range errs {
				if !strings.HasPrefix(p.Message, "line ") {
					t.Errorf("%s: message %q does not name the line", p.Field, p.Message)
				}
			}
		})
	}
}

func TestParseSyntaxErrorAndEmpty(t *testing.T) {
	t.Parallel()
	if _, err := Parse([]byte("apis: [\n")); err == nil {
		t.Error("syntax error accepted")
	}
	for _, in := range []string{"", "---\n", "# nothing\n", "apis:\npolicies:\n"} {
		f, err := Parse([]byte(in))
		if err != nil || len(f.APIs)+len(f.Policies) != 0 {
			t.Errorf("Parse(%q) = %+v, %v", in, f, err)
		}
	}
	if _, err := Parse(make([]byte, MaxFileBytes+1)); err == nil {
		t.Error("oversized file accepted")
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	in := `{"apis":[{"id":"a","listen_path":"/a/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"keyless"}}],"policies":[]}`
	f, err := Parse([]byte(in))
	if err != nil || len(f.APIs) != 1 || f.APIs[0].ID != "a" {
		t.Fatalf("Parse(JSON) = %+v, %v", f, err)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	f, err := Parse(mustRead(t, "testdata/invalid.yaml"))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	errs := f.Validate()
	want := []string{
		"apis[1].id", "apis[1].listen_path", "apis[1].upstream.targets[0]", "apis[1].auth.mode",
		"apis[2].rate_limit.rate",
		"apis[3].id",
		"apis[2].listen_path", // clashes with apis[0]: /orders and /orders/
		"policies[0].access[0].methods[0]", "policies[0].quota.max",
	}
	if got := fields(errs); !reflect.DeepEqual(got, want) {
		t.Errorf("fields:\n got %q\nwant %q\n%v", got, want, errs)
	}
	// A policy naming an API neither in the file nor stored.
	ctx := f.CheckAgainst(&File{}, false)
	if got := fields(ctx); !reflect.DeepEqual(got, []string{"policies[0].access[0].api"}) {
		t.Errorf("CheckAgainst fields = %q", got)
	}
}

func TestCheckAgainstStoredState(t *testing.T) {
	t.Parallel()
	stored := &File{APIs: []model.API{{ID: "legacy", ListenPath: "/shop/"}}}
	f := &File{
		APIs:     []model.API{{ID: "shop", ListenPath: "/shop"}},
		Policies: []model.Policy{{ID: "p", Access: []model.AccessRight{{API: "legacy"}}}},
	}
	tests := []struct {
		prune bool
		want  []string
	}{
		{false, []string{"apis[0].listen_path"}},      // legacy is kept: clash, but the policy's API exists
		{true, []string{"policies[0].access[0].api"}}, // legacy is pruned: no clash, the policy's API is gone
	}
	for _, tt := range tests {
		if got := fields(f.CheckAgainst(stored, tt.prune)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("prune=%v: fields = %q, want %q", tt.prune, got, tt.want)
		}
	}
}

func TestMarshalRoundTripIsStable(t *testing.T) {
	t.Parallel()
	f, err := Parse(mustRead(t, "testdata/valid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(out)
	if err != nil {
		t.Fatalf("parse exported: %v\n%s", err, out)
	}
	f.Normalize()
	if !reflect.DeepEqual(f, g) {
		t.Errorf("round trip differs:\n%+v\n%+v", f, g)
	}
	out2, err := Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(out2) {
		t.Errorf("export not stable:\n%s\n---\n%s", out, out2)
	}
	if !strings.HasPrefix(string(out), "apis:\n  - id: catalog\n") {
		t.Errorf("export not sorted by id:\n%s", out)
	}
	p, err := MakePlan(g, f, true)
	if err != nil || !p.Empty() {
		t.Errorf("plan of identical files = %+v, %v", p, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/valid.yaml", "testdata/invalid.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apis: [{id: a, upstream: {targets: [1, 2]}, endpoints: [{path: '/{x'}]}]"))
	f.Add([]byte("policies:\n  - id: p\n    rate_limit: {rate: 1, per: 60}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("apis: !!binary aGVsbG8=\n"))
	f.Add([]byte("keys:\n  - id: k\n    tags: [a]\n    policies: [p]\n    expires_at: 2031-01-02T03:04:05+02:00\n    hash: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"))
	f.Add([]byte("keys: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error message")
			}
			return
		}
		_ = file.Validate()
		_ = file.CheckAgainst(&File{}, true)
		out, err := Marshal(file)
		if err != nil {
			t.Fatalf("marshal of a parsed file: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("exported file does not parse: %v\n%s", err, out)
		}
		p, err := MakePlan(file, again, true)
		if errors.Is(err, ErrDuplicate) {
			return
		}
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		if !p.Empty() {
			var b strings.Builder
			p.Print(&b)
			t.Fatalf("exported file differs from the parsed one:\n%s", b.String())
		}
	})
}
