package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

const secret = "a-valid-key-0123456789"

func keyless(id, path, target string) *model.API {
	return &model.API{ID: id, ListenPath: path, Upstream: model.Upstream{Targets: []string{target}}, Auth: model.Auth{Mode: model.AuthKeyless}}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	strip := keyless("strip", "/strip/", up.URL+"/base")
	strip.StripListenPath = true
	host := keyless("host", "/", up.URL)
	host.Hosts = []string{"api.example.com"}
	c.put(keyless("orders", "/orders", up.URL), keyless("orders-v2", "/orders/v2", up.URL), strip, host)
	n := c.node()
	cases := []struct {
		path, host, wantPath string
		status               int
	}{
		{"/orders/1?x=y", "", "/orders/1?x=y", 200},
		{"/orders/v2/9", "", "/orders/v2/9", 200},
		{"/strip/a/b", "", "/base/a/b", 200},
		{"/strip", "", "/base/", 200},
		{"/anything", "API.example.com:8080", "/anything", 200},
		{"/nothing", "", "", 404},
		{"/ordersx", "", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			var h []string
			if tc.host != "" {
				h = []string{"Host", tc.host}
			}
			r := do(t, "GET", n.url+tc.path, h...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == 404 && (r.code != "not_found" || r.header.Get("Content-Type") != "application/json") {
				t.Fatalf("404 body %q", r.body)
			}
			if tc.status == 200 && r.echo.Path != tc.wantPath {
				t.Fatalf("upstream path %q, want %q", r.echo.Path, tc.wantPath)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.Auth = model.Auth{Mode: model.AuthAPIKey, QueryParam: "api_key"}
	b := keyless("b", "/b", up.URL)
	b.Auth = model.Auth{Mode: model.AuthAPIKey, Header: "X-Token"}
	past := time.Now().Add(-time.Hour)
	c.put(a, b, keyless("open", "/open", up.URL),
		&model.Policy{ID: "read", Access: []model.AccessRight{{API: "a", Methods: []string{"GET"}}}},
		&model.Policy{ID: "write", Access: []model.AccessRight{{API: "a", Methods: []string{"POST"}, Paths: []string{"/items/*"}}}},
		&model.Policy{ID: "b", Access: []model.AccessRight{{API: "b"}}},
		keyFor(secret, func(k *model.Key) { k.Policies = []string{"read", "write", "b"} }),
		keyFor("expired-key-0123456789", func(k *model.Key) { k.Policies = []string{"read"}; k.ExpiresAt = &past }),
		keyFor("disabled-key-0123456789", func(k *model.Key) { k.Policies = []string{"read"}; k.Disabled = true }),
	)
	n := c.node()
	cases := []struct {
		name, method, path string
		headers            []string
		status             int
		code               string
	}{
		{"bearer", "GET", "/a/x", []string{"Authorization", "Bearer " + secret}, 200, ""},
		{"default header", "GET", "/a/x", []string{"X-API-Key", secret}, 200, ""},
		{"query", "GET", "/a/x?api_key=" + secret, nil, 200, ""},
		{"custom header", "GET", "/b/x", []string{"X-Token", secret}, 200, ""},
		{"custom header only", "GET", "/b/x", []string{"X-API-Key", secret}, 401, "missing_key"},
		{"missing", "GET", "/a/x", nil, 401, "missing_key"},
		{"short", "GET", "/a/x", []string{"X-API-Key", "short"}, 401, "invalid_key"},
		{"unknown", "GET", "/a/x", []string{"X-API-Key", "unknown-key-0123456789"}, 401, "invalid_key"},
		{"expired", "GET", "/a/x", []string{"X-API-Key", "expired-key-0123456789"}, 401, "key_expired"},
		{"disabled", "GET", "/a/x", []string{"X-API-Key", "disabled-key-0123456789"}, 401, "key_disabled"},
		{"policy union path", "POST", "/a/items/1", []string{"X-API-Key", secret}, 200, ""},
		{"forbidden path", "POST", "/a/other", []string{"X-API-Key", secret}, 403, "forbidden"},
		{"forbidden method", "DELETE", "/a/x", []string{"X-API-Key", secret}, 403, "forbidden"},
		{"keyless", "GET", "/open", nil, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, tc.method, n.url+tc.path, tc.headers...)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			if r.status == 200 {
				if r.echo.Headers["X-Api-Key"] != "" || r.echo.Headers["Authorization"] != "" || strings.Contains(r.echo.Path, secret) {
					t.Fatalf("key forwarded upstream: %+v", r.echo)
				}
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.Auth.Mode = model.AuthAPIKey
	c.put(a,
		&model.Policy{ID: "p", Access: []model.AccessRight{{API: "a"}}, RateLimit: &model.Limit{Rate: 3, Per: model.Duration(time.Hour)}},
		&model.Policy{ID: "q", Access: []model.AccessRight{{API: "a"}}, Quota: &model.Quota{Max: 2, Renewal: model.Duration(time.Hour)}},
		keyFor("rate-key-0123456789", func(k *model.Key) { k.Policies = []string{"p"} }),
		keyFor("quota-key-0123456789", func(k *model.Key) { k.Policies, k.Alias = []string{"q"}, "quota partner" }),
	)
	n := c.node()
	t.Run("rate", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < 3; i++ {
			if r := do(t, "GET", n.url+"/a", "X-API-Key", "rate-key-0123456789"); r.status != 200 || r.header.Get("RateLimit-Policy") == "" {
				t.Fatalf("request %d: %d %v", i, r.status, r.header)
			}
		}
		r := do(t, "GET", n.url+"/a", "X-API-Key", "rate-key-0123456789")
		if r.status != 429 || r.code != "rate_limited" {
			t.Fatalf("4th: %d %s", r.status, r.body)
		}
		for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if r.header.Get(h) == "" {
				t.Errorf("429 without %s", h)
			}
		}
		if r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Limit") != "3" {
			t.Errorf("429 headers %v", r.header)
		}
	})
	t.Run("quota", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < 2; i++ {
			if r := do(t, "GET", n.url+"/a", "X-API-Key", "quota-key-0123456789"); r.status != 200 {
				t.Fatalf("request %d: %d", i, r.status)
			}
		}
		r := do(t, "GET", n.url+"/a", "X-API-Key", "quota-key-0123456789")
		if r.status != 429 || r.code != "quota_exceeded" || r.header.Get("Retry-After") == "" {
			t.Fatalf("3rd: %d %s %v", r.status, r.body, r.header)
		}
		ev := n.events.all()
		last := ev[len(ev)-1]
		if last.Limited != "quota" || last.Status != 429 || last.KeyHash != model.HashKey([]byte("quota-key-0123456789")) ||
			last.KeyID != "k-quota-" || last.KeyAlias != "quota partner" {
			t.Fatalf("usage event %+v", last)
		}
	})
}

// Three nodes on one Redis, hammered concurrently on one key: exactly L
// requests pass.
func TestThreeNodesExactLimit(t *testing.T) {
	t.Parallel()
	c := newExactCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.Auth.Mode = model.AuthAPIKey
	a.OnStoreError = model.StoreErrorClosed
	const L = 40
	c.put(a, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "a"}}, RateLimit: &model.Limit{Rate: L, Per: model.Duration(time.Hour)}},
		keyFor(secret, func(k *model.Key) { k.Policies = []string{"p"} }))
	nodes := []*node{c.node(), c.node(), c.node()}
	ok, limited := hammer(t, func(w, i int) response {
		return do(t, "GET", nodes[(w+i)%3].url+"/a", "X-API-Key", secret)
	})
	if ok != L || limited != hammerRequests-L {
		t.Fatalf("accepted %d, limited %d; want %d and %d", ok, limited, L, hammerRequests-L)
	}
}

// A refused request consumes nothing: the API limit refuses, and the key's
// own quota is untouched.
func TestRefusedDoesNotConsume(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.Auth.Mode = model.AuthAPIKey
	a.Endpoints = []model.Endpoint{{Path: "/slow", RateLimit: &model.Limit{Rate: 1, Per: model.Duration(time.Hour)}}}
	c.put(a, keyFor(secret, func(k *model.Key) {
		k.Access = []model.AccessRight{{API: "a"}}
		k.Quota = &model.Quota{Max: 3, Renewal: model.Duration(time.Hour)}
	}))
	n := c.node()
	if r := do(t, "GET", n.url+"/a/slow", "X-API-Key", secret); r.status != 200 {
		t.Fatalf("first: %d", r.status)
	}
	for i := 0; i < 5; i++ {
		if r := do(t, "GET", n.url+"/a/slow", "X-API-Key", secret); r.status != 429 || r.code != "rate_limited" {
			t.Fatalf("endpoint limit: %d %s", r.status, r.body)
		}
	}
	for i := 0; i < 2; i++ {
		if r := do(t, "GET", n.url+"/a/other", "X-API-Key", secret); r.status != 200 {
			t.Fatalf("quota consumed by refused requests: request %d got %d", i, r.status)
		}
	}
	if r := do(t, "GET", n.url+"/a/other", "X-API-Key", secret); r.code != "quota_exceeded" {
		t.Fatalf("quota: %d %s", r.status, r.body)
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	dead := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	up := echoUpstream(t)
	s := keyless("slow", "/slow", slow.URL)
	s.Upstream.ReadTimeout = model.Duration(100 * time.Millisecond)
	c.put(keyless("dead", "/dead", dead), s, keyless("rr", "/rr", dead))
	rr := keyless("rr", "/rr", up.URL)
	rr.Upstream.Targets = []string{dead, up.URL}
	c.put(rr)
	n := c.node()
	if r := do(t, "GET", n.url+"/dead"); r.status != 502 || r.code != "upstream_unavailable" || strings.Contains(r.body, "127.0.0.1") {
		t.Fatalf("dead: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", n.url+"/slow"); r.status != 504 || r.code != "upstream_timeout" {
		t.Fatalf("slow: %d %s", r.status, r.body)
	}
	for i := 0; i < 6; i++ {
		if r := do(t, "GET", n.url+"/rr"); r.status != 200 {
			t.Fatalf("round robin did not skip the dead target: %d %s", r.status, r.body)
		}
	}
}

func TestForwardedAndHopByHop(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	c.put(keyless("a", "/a", up.URL))
	n := c.node()
	r := do(t, "GET", n.url+"/a", "Host", "client.example", "Connection", "X-Secret", "X-Secret", "1",
		"Keep-Alive", "timeout=1", "Proxy-Authorization", "x", "Te", "trailers", "X-Forwarded-For", "10.1.1.1")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	h := r.echo.Headers
	for _, name := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Te"} {
		if h[name] != "" {
			t.Errorf("forwarded hop-by-hop %s", name)
		}
	}
	if h["X-Forwarded-For"] != "10.1.1.1, 127.0.0.1" || h["X-Forwarded-Proto"] != "http" || h["X-Forwarded-Host"] != "client.example" {
		t.Errorf("forwarded headers %v", h)
	}
}

// raw sends a raw HTTP/1.1 request and returns the status line.
func raw(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read status: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestEdgeHygiene(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	small := keyless("small", "/small", up.URL)
	small.MaxBodyBytes = 10
	c.put(keyless("a", "/a", up.URL), small)
	n := c.node()
	addr := n.srv.Addr()
	big := strings.Repeat("x", 5000)
	cases := []struct {
		name, req, want string
	}{
		{"ok", "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK"},
		{"cl and te", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"te and cl", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"header too large", "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"body too large", fmt.Sprintf("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<17, strings.Repeat("y", 1<<17)), "HTTP/1.1 413 Request Entity Too Large"},
		{"api body limit", "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", "HTTP/1.1 413 Request Entity Too Large"},
		{"api body within limit", "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 200 OK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := raw(t, addr, tc.req); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	closed := keyless("closed", "/closed", up.URL)
	closed.OnStoreError = model.StoreErrorClosed
	closed.RateLimit = &model.Limit{Rate: 1000, Per: model.Duration(time.Second)}
	open := keyless("open", "/open", up.URL)
	open.RateLimit = &model.Limit{Rate: 1000, Per: model.Duration(time.Second)}
	keyed := keyless("keyed", "/keyed", up.URL)
	keyed.Auth.Mode = model.AuthAPIKey
	c.put(closed, open, keyed, keyFor(secret, func(k *model.Key) { k.Access = []model.AccessRight{{API: "keyed"}} }))
	n := c.node()
	for _, p := range []string{"/closed", "/open"} {
		if r := do(t, "GET", n.url+p); r.status != 200 {
			t.Fatalf("%s before: %d", p, r.status)
		}
	}
	c.redis.Stop()
	r := do(t, "GET", n.url+"/closed")
	if r.status != 503 || r.code != "store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("closed with redis down: %d %s %v", r.status, r.body, r.header)
	}
	if r := do(t, "GET", n.url+"/open"); r.status != 200 {
		t.Fatalf("open with redis down: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", n.url+"/keyed", "X-API-Key", secret); r.status != 503 || r.code != "store_unavailable" {
		t.Fatalf("unverifiable key: %d %s", r.status, r.body)
	}
	c.redis.Start()
	waitStatus(t, 200, func() int { return do(t, "GET", n.url+"/closed").status })
	waitStatus(t, 200, func() int { return do(t, "GET", n.url+"/keyed", "X-API-Key", secret).status })
}

func TestUsageEvent(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.Endpoints = []model.Endpoint{{Path: "/items/{id}"}}
	c.put(a)
	n := c.node()
	if r := do(t, "GET", n.url+"/a/items/7"); r.status != 200 {
		t.Fatal(r.status)
	}
	ev := n.events.all()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	e := ev[0]
	if e.API != "a" || e.Method != "GET" || e.Path != "/a/items/7" || e.Endpoint != "/items/{id}" || e.Status != 200 ||
		e.Node != "n1" || e.Time == 0 || e.BytesOut == 0 || e.KeyHash != "" || e.Limited != "" {
		t.Fatalf("event %+v", e)
	}
}
