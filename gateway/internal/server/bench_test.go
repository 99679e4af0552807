package server

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
)

// BenchmarkHandler runs the whole request path in process against a real
// Redis and a local upstream: go test -bench Handler -benchmem ./internal/server/
func BenchmarkHandler(b *testing.B) {
	cases := []struct {
		name    string
		path    string
		headers []string
	}{
		{"keyless", "/open/x", nil},
		{"key+limit+quota", "/keyed/x", []string{"X-API-Key", secret}},
	}
	cb := newCluster(b)
	up := echoUpstream(b).URL
	keyed := keyless("keyed", "/keyed", up)
	keyed.Auth.Mode = model.AuthAPIKey
	cb.put(keyless("open", "/open", up), keyed, keyFor(secret, func(k *model.Key) {
		k.Access = []model.AccessRight{{API: "keyed"}}
		k.RateLimit = &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second)}
		k.Quota = &model.Quota{Max: 1 << 40, Renewal: model.Duration(time.Hour)}
	}))
	n := cb.node()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			var ctx fasthttp.RequestCtx
			b.ReportAllocs()
			for b.Loop() {
				req.Reset()
				req.SetRequestURI("http://bench.example" + tc.path)
				for i := 0; i+1 < len(tc.headers); i += 2 {
					req.Header.Set(tc.headers[i], tc.headers[i+1])
				}
				ctx.Init(&req, remote, nil)
				n.srv.handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}
