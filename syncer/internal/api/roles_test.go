package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/syncer/internal/api"
	"github.com/sluicegw/sluice/syncer/internal/apitest"
)

// One token per role, plus the configuration's admin token.
var roleTokens = map[tokens.Role]struct{ name, token string }{
	tokens.Admin:    {"alice", "alice-admin-token-0123456789"},
	tokens.Operator: {"olivia", "olivia-operator-token-0123456789"},
	tokens.Issuer:   {"ivan", "ivan-issuer-token-0123456789"},
	tokens.Viewer:   {"vera", "vera-viewer-token-0123456789"},
}

func tokensFile(roles ...tokens.Role) string {
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, r := range roles {
		rt := roleTokens[r]
		fmt.Fprintf(&b, "  - {name: %s, role: %s, token: %s}\n", rt.name, r, rt.token)
	}
	return b.String()
}

func writeTokens(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink the reload goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newRolesEnv serves the admin API with the four role tokens from a file
// (re-read every 10ms) and "test-admin-token-..." as the admin token.
func newRolesEnv(t *testing.T) (*env, string, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	writeTokens(t, path, tokensFile(tokens.Roles...))
	logs := &syncBuffer{}
	src, err := tokens.NewSource(tokens.SourceOptions{Path: path, Interval: 10 * time.Millisecond, Log: zerolog.New(logs),
		Static: []tokens.Token{tokens.New(api.AdminTokenName, tokens.Admin, token)}})
	if err != nil {
		t.Fatal(err)
	}
	src.Start()
	t.Cleanup(func() { _ = src.Close(t.Context()) })
	r, n := testutil.StartRedis(t), testutil.StartNATS(t)
	s := apitest.StartTokens(t, r, n, src, 2*time.Second)
	return &env{t: t, url: s.URL, srv: s.API, store: s.Store, nats: n, nc: s.NC, nodes: s.Nodes}, path, logs
}

func as(r tokens.Role) string { return "Authorization: Bearer " + roleTokens[r].token }

// TestRoleMatrix calls representative routes with each role's token: the
// role may (2xx) or may not (403, code forbidden).
func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	e, _, _ := newRolesEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("a1", "/a1/"))
	e.must(201, "POST", "/v1/policies", policyJSON("p1", "a1"))
	e.must(201, "POST", "/v1/orgs", `{"id":"o1"}`)
	for _, r := range tokens.Roles {
		e.must(201, "POST", "/v1/apis", apiJSON("del-"+string(r), "/del-"+string(r)+"/"))
		e.must(201, "POST", "/v1/policies", policyJSON("del-"+string(r), "a1"))
		e.must(201, "POST", "/v1/orgs", `{"id":"del-`+string(r)+`"}`)
		for _, k := range []string{"k-", "kd-"} {
			e.must(201, "POST", "/v1/keys", `{"id":"`+k+string(r)+`","policies":["p1"]}`)
		}
	}
	const ok, no = true, false
	type row struct {
		method, path, body string
		admin, operator    bool
		issuer, viewer     bool
	}
	for _, tc := range []row{
		{"GET", "/v1/openapi.json", "", ok, ok, ok, ok},
		{"GET", "/v1/apis", "", ok, ok, no, ok},
		{"GET", "/v1/apis/a1", "", ok, ok, no, ok},
		{"POST", "/v1/apis", apiJSON("new-ROLE", "/new-ROLE/"), ok, ok, no, no},
		{"PUT", "/v1/apis/a1", apiJSON("a1", "/a1/"), ok, ok, no, no},
		{"DELETE", "/v1/apis/del-ROLE", "", ok, ok, no, no},
		{"GET", "/v1/policies", "", ok, ok, no, ok},
		{"POST", "/v1/policies", policyJSON("new-ROLE", "a1"), ok, ok, no, no},
		{"GET", "/v1/policies/p1", "", ok, ok, no, ok},
		{"PUT", "/v1/policies/p1", policyJSON("p1", "a1"), ok, ok, no, no},
		{"DELETE", "/v1/policies/del-ROLE", "", ok, ok, no, no},
		{"GET", "/v1/orgs", "", ok, ok, no, ok},
		{"GET", "/v1/orgs/o1", "", ok, ok, no, ok},
		{"POST", "/v1/orgs", `{"id":"new-ROLE"}`, ok, ok, no, no},
		{"PUT", "/v1/orgs/o1", `{"id":"o1","tags":["t"]}`, ok, ok, no, no},
		{"DELETE", "/v1/orgs/del-ROLE", "", ok, ok, no, no},
		{"GET", "/v1/keys", "", ok, ok, ok, ok},
		{"GET", "/v1/keys/k-ROLE", "", ok, ok, ok, ok},
		{"POST", "/v1/keys", `{"id":"new-ROLE","policies":["p1"]}`, ok, no, ok, no},
		{"POST", "/v1/keys/k-ROLE/rotate", "", ok, no, ok, no},
		{"PUT", "/v1/keys/k-ROLE", `{"policies":["p1"],"alias":"edited"}`, ok, ok, no, no},
		{"DELETE", "/v1/keys/kd-ROLE", "", ok, ok, ok, no},
		{"GET", "/v1/nodes", "", ok, ok, no, ok},
		{"GET", "/v1/status", "", ok, ok, no, ok},
		{"GET", "/v1/audit", "", ok, ok, no, ok},
		{"POST", "/v1/plan", applyBody(false, false, []string{apiJSON("a1", "/a1/")}, nil), ok, ok, no, ok},
		{"POST", "/v1/apply", applyBody(false, true, []string{apiJSON("a1", "/a1/")}, nil), ok, ok, no, no},
	} {
		for _, r := range tokens.Roles {
			allowed := map[tokens.Role]bool{tokens.Admin: tc.admin, tokens.Operator: tc.operator, tokens.Issuer: tc.issuer, tokens.Viewer: tc.viewer}[r]
			path := strings.ReplaceAll(tc.path, "ROLE", string(r))
			body := strings.ReplaceAll(tc.body, "ROLE", string(r))
			t.Run(string(r)+" "+tc.method+" "+tc.path, func(t *testing.T) {
				t.Parallel()
				e := *e
				e.t = t
				got := e.do(tc.method, path, body, as(r))
				if allowed && (got.status < 200 || got.status > 299) {
					t.Fatalf("%s: %d, want 2xx: %s", r, got.status, got.body)
				}
				if !allowed && (got.status != 403 || got.code(t) != "forbidden" || !bytes.Contains(got.body, []byte(roleTokens[r].name))) {
					t.Fatalf("%s: %d, want 403 forbidden naming the token: %s", r, got.status, got.body)
				}
				if bytes.Contains(got.body, []byte(roleTokens[r].token)) {
					t.Fatalf("the answer carries the token: %s", got.body)
				}
			})
		}
	}
}

// TestUnauthenticated: a missing or wrong token is 401 with the JSON error
// body, on every /v1 route; /health, /ready and /metrics stay open.
func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	e, _, _ := newRolesEnv(t)
	for _, h := range []string{"Authorization: ", "Authorization: Bearer wrong-token-0123456789", "Authorization: Bearer " + roleTokens[tokens.Viewer].token + "x",
		"Authorization: Basic " + roleTokens[tokens.Admin].token} {
		for _, p := range []string{"/v1/apis", "/v1/audit", "/v1/keys", "/v1/status"} {
			r := e.do("GET", p, "", h)
			if r.status != 401 || r.code(t) != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%q %s: %d %s, want 401 unauthorized", h, p, r.status, r.body)
			}
		}
	}
	for _, p := range []string{"/health", "/metrics"} {
		e.must(200, "GET", p, "", "Authorization: ")
	}
	m := string(e.must(200, "GET", "/metrics", "").body)
	if !strings.Contains(m, `sluice_admin_auth_denied_total{reason="unauthenticated"} 16`) {
		t.Errorf("denied requests not counted:\n%s", grepLines(m, "denied"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTokenFileReload: a changed file takes effect (the new token works,
// the removed one is 401); a broken file keeps the tokens in force. No
// token reaches the log.
func TestTokenFileReload(t *testing.T) {
	t.Parallel()
	e, path, logs := newRolesEnv(t)
	e.must(200, "GET", "/v1/apis", "", as(tokens.Viewer))
	writeTokens(t, path, tokensFile(tokens.Admin, tokens.Operator))
	testutil.WaitFor(t, 10*time.Second, func() error {
		if s := e.do("GET", "/v1/apis", "", as(tokens.Viewer)).status; s != 401 {
			return fmt.Errorf("removed token: %d, want 401", s)
		}
		return nil
	})
	e.must(200, "GET", "/v1/apis", "", as(tokens.Operator))
	e.must(200, "GET", "/v1/apis", "") // admin_token stays

	writeTokens(t, path, "tokens:\n  - {name: vera, role: root, token: "+roleTokens[tokens.Viewer].token+"}\n")
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), "token file not reloaded") {
			return fmt.Errorf("no reload error logged yet")
		}
		return nil
	})
	e.must(200, "GET", "/v1/apis", "", as(tokens.Operator))
	e.must(401, "GET", "/v1/apis", "", as(tokens.Viewer))

	writeTokens(t, path, tokensFile(tokens.Viewer))
	testutil.WaitFor(t, 10*time.Second, func() error {
		if s := e.do("GET", "/v1/apis", "", as(tokens.Viewer)).status; s != 200 {
			return fmt.Errorf("new token: %d, want 200", s)
		}
		return nil
	})
	e.must(401, "GET", "/v1/apis", "", as(tokens.Operator))
	for _, rt := range roleTokens {
		if strings.Contains(logs.String(), rt.token) {
			t.Errorf("the log carries %s's token:\n%s", rt.name, logs.String())
		}
	}
}

type auditPage struct {
	Items      []store.AuditEntry `json:"items"`
	NextCursor string             `json:"next_cursor"`
}

func (e *env) audit(query string) auditPage {
	e.t.Helper()
	var p auditPage
	if err := json.Unmarshal(e.must(200, "GET", "/v1/audit?"+query, "").body, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestAuditTrail: each write records the token's name, the change and the
// ETags; a refused write records nothing; the filters and the cursor work.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e, _, _ := newRolesEnv(t)
	created := e.must(201, "POST", "/v1/apis", apiJSON("a1", "/a1/"), as(tokens.Operator))
	etag1 := created.header.Get("ETag")
	e.must(412, "PUT", "/v1/apis/a1", apiJSON("a1", "/a2/"), as(tokens.Admin), `If-Match: "00000000"`)
	e.must(409, "POST", "/v1/apis", apiJSON("a1", "/a1/"), as(tokens.Admin))
	put := e.must(200, "PUT", "/v1/apis/a1", apiJSON("a1", "/a3/"), as(tokens.Admin), "If-Match: "+etag1)
	e.must(201, "POST", "/v1/policies", policyJSON("p1", "a1"), as(tokens.Operator))
	e.must(201, "POST", "/v1/keys", `{"id":"k1","policies":["p1"]}`, as(tokens.Issuer))
	e.must(204, "DELETE", "/v1/keys/k1", "")

	all := e.audit("")
	if len(all.Items) != 5 || all.NextCursor != "" {
		t.Fatalf("%d entries (cursor %q), want 5: %+v", len(all.Items), all.NextCursor, all.Items)
	}
	want := []struct{ actor, kind, id, op string }{
		{api.AdminTokenName, "key", "k1", "delete"}, {"ivan", "key", "k1", "put"}, {"olivia", "policy", "p1", "put"},
		{"alice", "api", "a1", "put"}, {"olivia", "api", "a1", "put"},
	}
	for i, w := range want {
		it := all.Items[i]
		if it.Actor != w.actor || it.Changes[0].Kind != w.kind || it.Changes[0].ID != w.id || it.Changes[0].Op != w.op {
			t.Errorf("entry %d = %+v, want %+v", i, it, w)
		}
	}
	if c := all.Items[3].Changes[0]; c.ETagBefore != etag1 || c.ETagAfter != put.header.Get("ETag") {
		t.Errorf("API update ETags %s -> %s, want %s -> %s", c.ETagBefore, c.ETagAfter, etag1, put.header.Get("ETag"))
	}
	if c := all.Items[4].Changes[0]; c.ETagBefore != "" || c.ETagAfter != etag1 {
		t.Errorf("API create ETags %q -> %q, want none -> %s", c.ETagBefore, c.ETagAfter, etag1)
	}
	if v := e.must(200, "GET", "/v1/status", "").json(t)["config_version"]; fmt.Sprint(v) != fmt.Sprint(all.Items[0].Version) {
		t.Errorf("newest entry has version %d, config version is %v", all.Items[0].Version, v)
	}

	count := func(q string) int { return len(e.audit(q).Items) }
	for q, n := range map[string]int{
		"actor=olivia": 2, "kind=api": 2, "kind=key&id=k1": 2, "id=p1": 1, "actor=nobody": 0,
		"since=" + url.QueryEscape(all.Items[4].Time.Format(time.RFC3339Nano)):                        5,
		"until=" + url.QueryEscape(all.Items[4].Time.Add(-time.Millisecond).Format(time.RFC3339Nano)): 0,
		"since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z":                                       5,
	} {
		if got := count(q); got != n {
			t.Errorf("GET /v1/audit?%s: %d entries, want %d", q, got, n)
		}
	}
	// Pages of 2: 2, 2, 1, in order, with no repeat.
	var ids []string
	cursor := ""
	for range 5 {
		p := e.audit("limit=2&cursor=" + cursor)
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(ids) != 5 || ids[0] != all.Items[0].ID || ids[4] != all.Items[4].ID {
		t.Errorf("paged ids %v, want those of %v", ids, all.Items)
	}
	for _, q := range []string{"kind=route", "since=yesterday", "limit=0", "limit=1001", "cursor=!!", "cursor=eA",
		"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"} {
		if r := e.do("GET", "/v1/audit?"+q, ""); r.status != 400 || r.code(t) != "invalid_request" {
			t.Errorf("GET /v1/audit?%s: %d %s, want 400", q, r.status, r.body)
		}
	}
}
