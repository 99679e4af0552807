package server

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/usage"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// The hot path's allocation budget, held by TestHandlerAllocations and
// measured by BenchmarkHandlerParallel. The upstream is a fasthttp server
// and usage events are discarded, so what is counted is the gateway's own
// work (plus one allocation of the test's RequestCtx.Init per request).
// Measured: keyless 3, key-lease 3 (decided from the node's lease), and
// 28-29 for a decision that calls Redis, of which about 24 are the Redis
// client's (command, boxed script arguments, deadline context, reply):
// sequential requests make one script call each; concurrent ones share
// calls (limit/group.go), which divides that part.

// fastUpstream is a fasthttp upstream answering 200 "ok", allocating
// nothing per request.
func fastUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// discard counts usage events and keeps none.
type discard struct{ n atomic.Int64 }

func (d *discard) Emit(*usage.Event) bool { d.n.Add(1); return true }

// hotPath is one request shape of the hot path with its allocation budget.
type hotPath struct {
	name    string
	path    string
	headers []string
	allocs  float64 // most allocations per request TestHandlerAllocations accepts
	// raceAllocs is the budget with the race detector on (make test),
	// which allocates for its own bookkeeping.
	raceAllocs float64
}

// hotPaths builds a node serving a keyless API, an API key with an exact
// limit and quota, one with a lease limit and quota, and a JWT policy.
func hotPaths(t testing.TB) (*node, []hotPath) {
	cb := newCluster(t)
	cb.storeTimeout = 5 * time.Second // a busy machine must not push decisions to the fallback
	o := testutil.StartOIDC(t)
	up := fastUpstream(t)
	keyed := keyless("keyed", "/keyed", up)
	keyed.Auth.Mode = model.AuthAPIKey
	leased := keyless("leased", "/leased", up)
	leased.Auth.Mode = model.AuthAPIKey
	jwtAPI := keyless("jwt", "/jwt", up)
	jwtAPI.Auth = model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
		Algorithms: []string{"ES256"}, Keys: model.JWTKeys{OIDCIssuer: o.Issuer()},
		Policies: model.JWTPolicies{Default: []string{"bench"}},
	}}
	// One request per millisecond refills: a lease's slots stay spendable
	// for as long as a node takes to serve them here, also with the race
	// detector on (docs/limits.md, lease trade-offs), and the burst of a
	// million never refuses.
	huge := func(mode string) (*model.Limit, *model.Quota) {
		return &model.Limit{Rate: 1_000_000, Per: model.Duration(1000 * time.Second), Mode: mode},
			&model.Quota{Max: 1 << 40, Renewal: model.Duration(time.Hour)}
	}
	const leaseSecret = "hot-path-lease-key-0123456789"
	cb.put(keyless("open", "/open", up), keyed, leased, jwtAPI,
		&model.Policy{ID: "bench", Access: []model.AccessRight{{API: "jwt"}}, RateLimit: &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second)}, Quota: &model.Quota{Max: 1 << 40, Renewal: model.Duration(time.Hour)}},
		keyFor(secret, func(k *model.Key) {
			k.Access = []model.AccessRight{{API: "keyed"}}
			k.RateLimit, k.Quota = huge(model.LimitExact)
		}),
		keyFor(leaseSecret, func(k *model.Key) {
			k.ID = "lease-key"
			k.Access = []model.AccessRight{{API: "leased"}}
			k.RateLimit, k.Quota = huge(model.LimitLease)
		}))
	n := cb.node()
	n.srv.usage = &discard{}
	claims := map[string]any{"iss": o.Issuer(), "sub": "bench", "exp": time.Now().Add(time.Hour).Unix()}
	return n, []hotPath{
		{"keyless", "/open/x", nil, 4, 7},
		{"key-exact", "/keyed/x", []string{"X-API-Key", secret}, 32, 44},
		{"key-lease", "/leased/x", []string{"X-API-Key", leaseSecret}, 5, 9},
		{"jwt-exact", "/jwt/x", []string{"Authorization", "Bearer " + o.Sign("ES256", claims)}, 32, 44},
	}
}

// serveOne parses w's request into req and runs the handler on it.
func serveOne(tb testing.TB, n *node, w *wireRequest, req *fasthttp.Request, ctx *fasthttp.RequestCtx) {
	w.rd.Reset(w.raw)
	w.br.Reset(&w.rd)
	req.Reset()
	if err := req.Read(w.br); err != nil {
		tb.Fatal(err)
	}
	ctx.Init(req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}, nil)
	n.srv.handle(ctx)
	if ctx.Response.StatusCode() != 200 {
		tb.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// TestHandlerAllocations holds the allocations per request of the whole
// handler (route, authenticate, limit with its Redis call, proxy, usage
// event) for each hot path shape: a change that adds work per request shows
// here first.
func TestHandlerAllocations(t *testing.T) {
	n, paths := hotPaths(t)
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			var req fasthttp.Request
			var ctx fasthttp.RequestCtx
			w := newWireRequest(wireGet(p.path, p.headers...))
			for i := 0; i < 200; i++ { // warm caches, pools, leases
				serveOne(t, n, w, &req, &ctx)
			}
			got := testing.AllocsPerRun(300, func() { serveOne(t, n, w, &req, &ctx) })
			budget := p.allocs
			if raceEnabled {
				budget = p.raceAllocs
			}
			t.Logf("%s: %.1f allocations per request (budget %.0f)", p.name, got, budget)
			if got > budget {
				t.Fatalf("%s: %.1f allocations per request, budget %.0f", p.name, got, budget)
			}
		})
	}
}

// BenchmarkHandlerParallel runs each hot path shape from GOMAXPROCS
// goroutines at once, so locks shared by requests show:
// go test -run '^$' -bench HandlerParallel -benchmem ./internal/server/
func BenchmarkHandlerParallel(b *testing.B) {
	n, paths := hotPaths(b)
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			raw := wireGet(p.path, p.headers...)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var req fasthttp.Request
				var ctx fasthttp.RequestCtx
				w := newWireRequest(raw)
				for pb.Next() {
					serveOne(b, n, w, &req, &ctx)
				}
			})
		})
	}
}
