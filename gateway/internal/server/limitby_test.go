package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/clientip"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// clientFrom is an HTTP client whose connections leave from ip (any
// 127.0.0.0/8 address is this host).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
	}}
}

func getFrom(t *testing.T, c *http.Client, url string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func trustingNode(c *cluster, cidrs ...string) *node {
	r, err := clientip.NewResolver(cidrs, clientip.XForwardedFor)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.node(func(o *Options) { o.ClientIP = r })
}

// TestLimitByClientIPAcrossNodes: a keyless API limited per client IP,
// three nodes, twenty client addresses (connections bound to
// 127.0.0.2-127.0.0.21), all at once. Each address sends a spoofed
// X-Forwarded-For naming a different address on every request; none of
// them is a trusted proxy, so each gets exactly its limit. Then the
// trusted proxy (127.0.0.21) forwards for new clients, each of which gets
// exactly its limit, and for 127.0.0.2, whose allowance is spent: refused.
func TestLimitByClientIPAcrossNodes(t *testing.T) {
	t.Parallel()
	c := newExactCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.OnStoreError = model.StoreErrorClosed
	const L, sends, proxyIP = 5, 12, "127.0.0.21"
	a.RateLimit = &model.Limit{Rate: L, Per: model.Duration(time.Hour), LimitBy: []string{model.LimitByClientIP}}
	c.put(a)
	nodes := []*node{trustingNode(c, proxyIP), trustingNode(c, proxyIP), trustingNode(c, proxyIP)}

	var ips []string
	for i := 2; i <= 21; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i))
	}
	ok := make([]atomic.Int64, len(ips))
	var wg sync.WaitGroup
	for i, ip := range ips {
		cl := clientFrom(ip)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(i, w int) {
				defer wg.Done()
				for j := 0; j < sends/2; j++ {
					// the proxy's own requests carry no header: it is a client too
					var hdr []string
					if ips[i] != proxyIP {
						hdr = []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d, 10.0.%d.%d", i, w, j)}
					}
					switch st := getFrom(t, cl, nodes[(i+w+j)%3].url+"/a/x", hdr...); st {
					case 200:
						ok[i].Add(1)
					case 429:
					default:
						t.Errorf("%s: status %d", ips[i], st)
					}
				}
			}(i, w)
		}
	}
	wg.Wait()
	for i, ip := range ips {
		if got := ok[i].Load(); got != L {
			t.Errorf("%s: %d accepted, want exactly %d", ip, got, L)
		}
	}

	pc := clientFrom(proxyIP)
	for f := 1; f <= 3; f++ {
		n := 0
		for j := 0; j < sends; j++ {
			if getFrom(t, pc, nodes[j%3].url+"/a/x", "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", f)) == 200 {
				n++
			}
		}
		if n != L {
			t.Errorf("forwarded for 198.51.100.%d: %d accepted, want %d", f, n, L)
		}
	}
	if st := getFrom(t, pc, nodes[0].url+"/a/x", "X-Forwarded-For", "1.2.3.4, 127.0.0.2"); st != 429 {
		t.Errorf("forwarded for a spent client: status %d, want 429", st)
	}
}

// TestLimitByMissing: a limit by header refuses a request without it (400,
// naming the header) or, with on_missing: shared, counts all such requests
// in one bucket; a limit by [key, client_ip] counts each key from each
// address.
func TestLimitByMissing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	refuse := keyless("refuse", "/refuse", up.URL)
	refuse.RateLimit = &model.Limit{Rate: 2, Per: model.Duration(time.Hour), LimitBy: []string{"header:X-Tenant"}}
	shared := keyless("shared", "/shared", up.URL)
	shared.Endpoints = []model.Endpoint{{Path: "/e", RateLimit: &model.Limit{Rate: 2, Per: model.Duration(time.Hour),
		LimitBy: []string{"header:X-Tenant", model.LimitByClientIP}, OnMissing: model.OnMissingShared}}}
	keyed := keyless("keyed", "/keyed", up.URL)
	keyed.Auth.Mode = model.AuthAPIKey
	keyed.RateLimit = &model.Limit{Rate: 1, Per: model.Duration(time.Hour), LimitBy: []string{model.LimitByKey, model.LimitByClientIP}}
	other := "another-secret-0123456789"
	c.put(refuse, shared, keyed,
		keyFor(secret, func(k *model.Key) { k.Access = []model.AccessRight{{API: "keyed"}} }),
		keyFor(other, func(k *model.Key) { k.Access = []model.AccessRight{{API: "keyed"}} }))
	n := c.node()

	r := do(t, "GET", n.url+"/refuse/x")
	if r.status != 400 || r.code != "limit_by_missing" || !strings.Contains(r.body, `header \"X-Tenant\"`) {
		t.Fatalf("missing header: %d %s", r.status, r.body)
	}
	for i, want := range []int{200, 200, 429} {
		if r := do(t, "GET", n.url+"/refuse/x", "X-Tenant", "acme"); r.status != want {
			t.Fatalf("tenant acme request %d: %d", i, r.status)
		}
	}
	if r := do(t, "GET", n.url+"/refuse/x", "X-Tenant", "globex"); r.status != 200 {
		t.Fatalf("tenant globex: %d", r.status)
	}
	for i, want := range []int{200, 200, 429} {
		if r := do(t, "GET", n.url+"/shared/e"); r.status != want {
			t.Fatalf("shared missing bucket request %d: %d", i, r.status)
		}
	}
	if r := do(t, "GET", n.url+"/shared/e", "X-Tenant", "acme"); r.status != 200 {
		t.Fatalf("a tenant is not in the missing bucket: %d", r.status)
	}
	c1, c2 := clientFrom("127.0.0.2"), clientFrom("127.0.0.3")
	for _, tc := range []struct {
		cl   *http.Client
		key  string
		want int
	}{{c1, secret, 200}, {c1, secret, 429}, {c2, secret, 200}, {c1, other, 200}, {c2, other, 200}, {c2, other, 429}} {
		if st := getFrom(t, tc.cl, n.url+"/keyed/x", "X-API-Key", tc.key); st != tc.want {
			t.Fatalf("key and address: %d, want %d", st, tc.want)
		}
	}
}

// TestLimitByClaim: an API limit counted per token claim (tenant): two
// subjects of one tenant share it, another tenant has its own, a token
// without the claim is refused naming it.
func TestLimitByClaim(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	api := jwtAPI("orders", "/orders", up.URL, o)
	api.RateLimit = &model.Limit{Rate: 2, Per: model.Duration(time.Hour), LimitBy: []string{"claim:tenant"}}
	c.put(api, readPolicy("orders"))
	n := c.node()
	tok := func(sub, tenant string) []string {
		extra := map[string]any{"sub": sub, "tenant": tenant}
		if tenant == "" {
			extra["tenant"] = nil
		}
		return bearer(o.Sign("RS256", tokenClaims(o, extra)))
	}
	for i, tc := range []struct {
		sub, tenant string
		want        int
	}{{"alice", "acme", 200}, {"bob", "acme", 200}, {"carol", "acme", 429}, {"alice", "globex", 200}, {"dave", "", 400}} {
		if r := do(t, "GET", n.url+"/orders", tok(tc.sub, tc.tenant)...); r.status != tc.want {
			t.Fatalf("request %d (%s of %q): %d %s", i, tc.sub, tc.tenant, r.status, r.body)
		} else if tc.want == 400 && !strings.Contains(r.body, `token claim \"tenant\"`) {
			t.Fatalf("missing claim error names nothing: %s", r.body)
		}
	}
}

// TestKeyScopeQuotaThroughGateway: a policy quota with scope key counts
// one key's requests to every API together; scope api (the default)
// counts each API apart.
func TestKeyScopeQuotaThroughGateway(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	var objs []any
	for _, id := range []string{"a", "b", "c"} {
		a := keyless(id, "/"+id, up.URL)
		a.Auth.Mode = model.AuthAPIKey
		objs = append(objs, a)
	}
	all := []model.AccessRight{{API: "a"}, {API: "b"}, {API: "c"}}
	objs = append(objs,
		&model.Policy{ID: "shared", Access: all, Quota: &model.Quota{Max: 5, Renewal: model.Duration(time.Hour), Scope: model.ScopeKey}},
		&model.Policy{ID: "apart", Access: all, Quota: &model.Quota{Max: 2, Renewal: model.Duration(time.Hour)}},
		keyFor(secret, func(k *model.Key) { k.Policies = []string{"shared"} }),
		keyFor("apart-secret-0123456789", func(k *model.Key) { k.Policies = []string{"apart"} }))
	c.put(objs...)
	n := c.node()
	ok := 0
	for i := 0; i < 12; i++ {
		if r := do(t, "GET", n.url+"/"+[]string{"a", "b", "c"}[i%3]+"/x", "X-API-Key", secret); r.status == 200 {
			ok++
		} else if r.code != "quota_exceeded" {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if ok != 5 {
		t.Fatalf("scope key: %d accepted across three APIs, want 5", ok)
	}
	ok = 0
	for i := 0; i < 12; i++ {
		if do(t, "GET", n.url+"/"+[]string{"a", "b", "c"}[i%3]+"/x", "X-API-Key", "apart-secret-0123456789").status == 200 {
			ok++
		}
	}
	if ok != 6 {
		t.Fatalf("scope api: %d accepted, want 2 on each of three APIs", ok)
	}
}
