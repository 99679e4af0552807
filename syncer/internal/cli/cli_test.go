package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Mistakes in the command line exit 2 with a message, before any request:
// the address points at a closed port, so a request would fail with exit 1.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	const closed = "http://127.0.0.1:1"
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"group without verb", []string{"apis"}, "apis: missing subcommand (create, delete, get, list, update)"},
		{"unknown verb", []string{"keys", "explode"}, `keys: unknown subcommand "explode"`},
		{"get without id", []string{"apis", "get"}, "apis get: expected 1 argument(s), got 0"},
		{"get with two ids", []string{"policies", "get", "a", "b"}, "expected 1 argument(s), got 2"},
		{"delete without id", []string{"keys", "delete"}, "expected at least 1 argument(s)"},
		{"unknown flag", []string{"apis", "list", "--bogus"}, "unknown flag: --bogus"},
		{"bad output format", []string{"-o", "xml", "apis", "list"}, `output format "xml"`},
		{"bad output format after", []string{"nodes", "-o", "csv"}, `output format "csv"`},
		{"bad address", []string{"--addr", "127.0.0.1:9090", "apis", "list"}, "must be an http:// or https:// URL"},
		{"key update with nothing", []string{"--addr", closed, "keys", "update", "k1"}, "nothing to change"},
		{"enable and disable", []string{"--addr", closed, "keys", "update", "k1", "--enable", "--disable"}, "exclude each other"},
		{"bad expiry", []string{"--addr", closed, "keys", "create", "--policy", "p", "--expires", "tomorrow"}, `--expires "tomorrow"`},
		{"create without input", []string{"--addr", closed, "apis", "create"}, "no input"},
		{"update id mismatch", []string{"--addr", closed, "apis", "update", "a", "-f", "testdata/api-b.yaml"}, `document's id "b" differs from the argument "a"`},
		{"apply without file", []string{"--addr", closed, "apply"}, "-f FILE is required"},
		{"usage bad step", []string{"usage", "--step", "5m"}, `--step "5m"`},
		{"usage bad top", []string{"usage", "--top", "node"}, `--top "node"`},
		{"tail bad api", []string{"usage", "tail", "--api", "a b"}, `--api "a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := sluicectl(t, closed, "", tt.args...)
			if r.code != ExitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, ExitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.want)
			}
		})
	}
}

func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		pos  []string
		out  string
	}{
		{[]string{"a", "-o", "json"}, []string{"a"}, "json"},
		{[]string{"-o", "yaml", "a", "b"}, []string{"a", "b"}, "yaml"},
		{[]string{"a", "--", "-o"}, []string{"a", "-o"}, "table"},
	}
	for _, tt := range tests {
		r := &run{g: globals{output: "table"}}
		fs := r.flagSet("x", "", "")
		pos, err := r.parse(fs, tt.args, 0, -1)
		if err != nil || strings.Join(pos, ",") != strings.Join(tt.pos, ",") || r.g.output != tt.out {
			t.Errorf("parse(%q) = %q, output %s, %v", tt.args, pos, r.g.output, err)
		}
	}
	for d, want := range map[time.Duration]string{time.Second: "1s", time.Minute: "1m", 720 * time.Hour: "720h", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestObjectsAgainstSyncer(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	addr := s.URL

	// Empty lists: a header, or [] in JSON.
	if out := must(t, addr, "", "apis", "list"); !strings.HasPrefix(out, "ID  NAME  LISTEN PATH") {
		t.Errorf("empty table:\n%s", out)
	}
	if out := must(t, addr, "", "policies", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty JSON list: %q", out)
	}

	// Create from YAML on stdin and from a JSON file.
	must(t, addr, "id: orders\nlisten_path: /orders/\nupstream: {targets: ['http://127.0.0.1:8001']}\nauth: {mode: api_key}\nrate_limit: {rate: 100, per: 1s}\n", "apis", "create")
	must(t, addr, "", "apis", "create", "-f", "testdata/api-b.yaml")
	out := must(t, addr, "", "apis", "list")
	wantTable := "ID      NAME       LISTEN PATH  HOSTS  AUTH     TARGETS                RATE LIMIT\n" +
		"b       Service B  /b/          -      keyless  http://127.0.0.1:8002  -\n" +
		"orders  -          /orders/     -      api_key  http://127.0.0.1:8001  100/1s\n"
	if out != wantTable {
		t.Errorf("apis list:\n%s\nwant:\n%s", out, wantTable)
	}

	// get -o json is the stored object.
	var a model.API
	if err := json.Unmarshal([]byte(must(t, addr, "", "apis", "get", "orders", "-o", "json")), &a); err != nil || a.RateLimit == nil || a.RateLimit.Rate != 100 {
		t.Errorf("get -o json: %+v, %v", a, err)
	}

	// A refused create prints the code, the message and every field problem, exit 1.
	r := sluicectl(t, addr, `{"id":"bad id","listen_path":"x","upstream":{"targets":[]},"auth":{"mode":"api_key"}}`, "apis", "create")
	if r.code != ExitError {
		t.Errorf("invalid create: exit %d", r.code)
	}
	for _, w := range []string{"error: invalid_request (HTTP 400)", "  id: ", "  listen_path: ", "  upstream.targets: "} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	// An unknown field is refused locally, before any request.
	r = sluicectl(t, addr, "id: x\nlisten_pth: /x/\n", "apis", "create")
	if r.code != ExitError || !strings.Contains(r.stderr, "field listen_pth not found") {
		t.Errorf("unknown field: exit %d, %s", r.code, r.stderr)
	}
	// Not found and a wrong token.
	if r := sluicectl(t, addr, "", "apis", "get", "nope"); r.code != ExitError || !strings.Contains(r.stderr, "error: not_found (HTTP 404)") {
		t.Errorf("get missing: exit %d, %s", r.code, r.stderr)
	}
	if r := sluicectl(t, addr, "", "--token", "wrong", "apis", "list"); r.code != ExitError || !strings.Contains(r.stderr, "unauthorized (HTTP 401)") {
		t.Errorf("wrong token: exit %d, %s", r.code, r.stderr)
	}

	// Update: the id may come from the argument only; a stale If-Match is refused.
	must(t, addr, "listen_path: /b2/\nupstream: {targets: ['http://127.0.0.1:8002']}\nauth: {mode: keyless}\n", "apis", "update", "b")
	if out := must(t, addr, "", "apis", "get", "b"); !strings.Contains(out, "/b2/") {
		t.Errorf("update not applied:\n%s", out)
	}
	r = sluicectl(t, addr, "", "apis", "update", "b", "-f", "testdata/api-b.yaml", "--if-match", `"0000"`)
	if r.code != ExitError || !strings.Contains(r.stderr, "precondition_failed (HTTP 412)") {
		t.Errorf("stale if-match: exit %d, %s", r.code, r.stderr)
	}

	// Policies and keys.
	must(t, addr, `{"id":"gold","access":[{"api":"orders"}],"rate_limit":{"rate":10,"per":"1m"},"quota":{"max":1000,"renewal":"720h"}}`, "policies", "create")
	if out := must(t, addr, "", "policies", "list"); !strings.Contains(out, "gold  -     orders  10/1m       1000/720h") {
		t.Errorf("policies list:\n%s", out)
	}
	r = sluicectl(t, addr, "", "keys", "create", "--id", "k1", "--policy", "gold", "--alias", "ci", "--expires", "24h")
	if r.code != 0 {
		t.Fatalf("keys create: %d %s", r.code, r.stderr)
	}
	clear := regexp.MustCompile(`(?m)^key: (sk_\S+)$`).FindStringSubmatch(r.stdout)
	if clear == nil || !strings.Contains(r.stderr, "shown only once") {
		t.Fatalf("keys create did not print the key:\n%s\n%s", r.stdout, r.stderr)
	}
	list := must(t, addr, "", "keys", "list", "-o", "json")
	if strings.Contains(list, clear[1]) || !strings.Contains(list, model.HashKey([]byte(clear[1]))) {
		t.Errorf("keys list shows the clear key or not its hash:\n%s", list)
	}
	if !strings.Contains(must(t, addr, "", "keys", "get", "k1"), "2030-01-03T03:04:05Z") {
		t.Errorf("expiry not 24h after now")
	}
	// Update by flags: read, change, write back with the ETag.
	must(t, addr, "", "keys", "update", "k1", "--disable", "--alias", "ci-2")
	var k model.Key
	if err := json.Unmarshal([]byte(must(t, addr, "", "keys", "get", "k1", "-o", "json")), &k); err != nil || !k.Disabled || k.Alias != "ci-2" || k.ExpiresAt == nil || len(k.Policies) != 1 {
		t.Errorf("key after update: %+v, %v", k, err)
	}
	// Rotate: a new value, same id.
	r = sluicectl(t, addr, "", "keys", "rotate", "k1", "-o", "json")
	var rot struct {
		Key  string `json:"key"`
		ID   string `json:"id"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rot); err != nil || rot.ID != "k1" || rot.Key == clear[1] || rot.Hash != model.HashKey([]byte(rot.Key)) {
		t.Errorf("rotate: %+v %v %s", rot, err, r.stderr)
	}

	// Delete several; the API used by a policy is refused with the reason.
	r = sluicectl(t, addr, "", "apis", "delete", "orders")
	if r.code != ExitError || !strings.Contains(r.stderr, "conflict (HTTP 409)") {
		t.Errorf("delete used API: exit %d, %s", r.code, r.stderr)
	}
	if out := must(t, addr, "", "keys", "delete", "k1"); out != "deleted key k1\n" {
		t.Errorf("delete output %q", out)
	}
	must(t, addr, "", "policies", "delete", "gold")
	must(t, addr, "", "apis", "delete", "orders", "b")
	if out := must(t, addr, "", "apis", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("apis left: %s", out)
	}
}

func TestNodesAndStatus(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	if out := must(t, s.URL, "", "status"); !strings.Contains(out, "config version:   0") || !strings.Contains(out, "converged:") {
		t.Errorf("status:\n%s", out)
	}
	must(t, s.URL, "", "apis", "create", "-f", "testdata/api-b.yaml")
	var st status
	if err := json.Unmarshal([]byte(must(t, s.URL, "", "status", "-o", "json")), &st); err != nil || st.ConfigVersion != 1 {
		t.Errorf("status json: %+v %v", st, err)
	}
	if out := must(t, s.URL, "", "nodes"); !strings.HasPrefix(out, "ID  ADDRESS  VERSION  CONFIG VERSION  LAST HEARTBEAT  LIVE\n") {
		t.Errorf("nodes:\n%s", out)
	}
}

func TestCreateReadsFileFlag(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.json")
	if err := os.WriteFile(file, []byte(`{"id":"p1","access":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := must(t, s.URL, "", "policies", "create", "-f", file, "-o", "yaml"); !strings.Contains(out, "id: p1") {
		t.Errorf("create -o yaml:\n%s", out)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	apiErr := &APIError{Status: 400, Code: "invalid_request", Message: "2 problems",
		Details: validation.Errors{{Field: "listen_path", Message: "must start with /"}, {Field: "id", Message: "bad"}}}
	tests := []struct {
		name string
		err  error
		code int
		want string
	}{
		{"ok", nil, ExitOK, ""},
		{"help", flag.ErrHelp, ExitOK, ""},
		{"usage", usageErrorf("apis get: expected 1 argument(s)"), ExitUsage, "sluicectl: apis get: expected 1 argument(s)\n"},
		{"api error", apiErr, ExitError, "error: invalid_request (HTTP 400): 2 problems\n  listen_path: must start with /\n  id: bad\n"},
		{"wrapped api error", fmt.Errorf("update api b failed after 1 of 3 changes: %w", apiErr), ExitError,
			"error: update api b failed after 1 of 3 changes: invalid_request (HTTP 400): 2 problems\n  listen_path: must start with /\n  id: bad\n"},
		{"problems", problemsError{msg: "f.yaml: 1 problem(s); nothing was written", problems: validation.Errors{{Field: "apis[0].id", Message: "bad"}}}, ExitError,
			"error: f.yaml: 1 problem(s); nothing was written\n  apis[0].id: bad\n"},
		{"other", errors.New("GET /v1/apis: connection refused"), ExitError, "error: GET /v1/apis: connection refused\n"},
	}
	for _, tt := range tests {
		var errOut bytes.Buffer
		r := &run{env: Env{Stderr: &errOut}}
		if code := r.report(tt.err); code != tt.code || errOut.String() != tt.want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", tt.name, code, errOut.String(), tt.code, tt.want)
		}
	}
}

func TestDecodeErrorBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		code   string
		msg    string
	}{
		{404, `{"error":{"code":"not_found","message":"api x: not found"}}`, "not_found", "api x: not found"},
		{502, "<html>bad gateway</html>", "http_502", "<html>bad gateway</html>"},
		{500, "", "http_500", "Internal Server Error"},
	}
	for _, tt := range tests {
		e := decodeError(tt.status, []byte(tt.body))
		if e.Code != tt.code || e.Message != tt.msg || e.Status != tt.status {
			t.Errorf("decodeError(%d, %q) = %+v", tt.status, tt.body, e)
		}
	}
}
