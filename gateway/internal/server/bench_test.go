package server

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
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
			w := newWireRequest(wireGet(tc.path, tc.headers...))
			b.ReportAllocs()
			for b.Loop() {
				w.read(b, &req)
				ctx.Init(&req, remote, nil)
				n.srv.handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}

// BenchmarkHandlerJWT is BenchmarkHandler's "key+limit+quota" scenario with
// a JWT instead of an API key: a repeated token, so the verification cache
// answers (no signature check), the identity's session is cached, and the
// policy's rate limit and quota go to Redis. Compare with
// go test -bench 'Handler' -benchmem ./internal/server/
func BenchmarkHandlerJWT(b *testing.B) {
	cb := newCluster(b)
	o := testutil.StartOIDC(b)
	up := echoUpstream(b).URL
	api := keyless("jwt", "/jwt", up)
	api.Auth = model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
		Algorithms: []string{"RS256", "ES256"},
		Keys:       model.JWTKeys{OIDCIssuer: o.Issuer()},
		Audiences:  []string{"orders"},
		Policies:   model.JWTPolicies{Default: []string{"bench"}},
	}}
	cb.put(api, &model.Policy{
		ID: "bench", Access: []model.AccessRight{{API: "jwt"}},
		RateLimit: &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second)},
		Quota:     &model.Quota{Max: 1 << 40, Renewal: model.Duration(time.Hour)},
	})
	n := cb.node()
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	claims := map[string]any{"iss": o.Issuer(), "sub": "bench", "aud": "orders", "exp": time.Now().Add(time.Hour).Unix()}
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg+"+limit+quota", func(b *testing.B) {
			authz := "Bearer " + o.Sign(alg, claims)
			var req fasthttp.Request
			var ctx fasthttp.RequestCtx
			w := newWireRequest(wireGet("/jwt/x", "Authorization", authz))
			b.ReportAllocs()
			for b.Loop() {
				w.read(b, &req)
				ctx.Init(&req, remote, nil)
				n.srv.handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}

// BenchmarkAuthenticate isolates the route and authenticate stages (no
// limiter, no upstream): a cached API key session against a cached token
// (verification cache and identity session both hit).
func BenchmarkAuthenticate(b *testing.B) {
	cb := newCluster(b)
	o := testutil.StartOIDC(b)
	keyed := keyless("keyed", "/keyed", "http://127.0.0.1:1")
	keyed.Auth.Mode = model.AuthAPIKey
	tok := keyless("jwt", "/jwt", "http://127.0.0.1:1")
	tok.Auth = model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
		Algorithms: []string{"RS256", "ES256"},
		Keys:       model.JWTKeys{OIDCIssuer: o.Issuer()},
		Policies:   model.JWTPolicies{Default: []string{"bench"}},
	}}
	cb.put(keyed, tok, &model.Policy{ID: "bench", Access: []model.AccessRight{{API: "jwt"}, {API: "keyed"}}},
		keyFor(secret, func(k *model.Key) { k.Policies = []string{"bench"} }))
	n := cb.node()
	claims := map[string]any{"iss": o.Issuer(), "sub": "bench", "exp": time.Now().Add(time.Hour).Unix()}
	cases := []struct{ name, path, header, value string }{
		{"key", "/keyed/x", "X-API-Key", secret},
		{"jwt-RS256", "/jwt/x", "Authorization", "Bearer " + o.Sign("RS256", claims)},
		{"jwt-ES256", "/jwt/x", "Authorization", "Bearer " + o.Sign("ES256", claims)},
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			var ctx fasthttp.RequestCtx
			x := new(exchange)
			w := newWireRequest(wireGet(tc.path, tc.header, tc.value))
			b.ReportAllocs()
			for b.Loop() {
				w.read(b, &req)
				ctx.Init(&req, remote, nil)
				x.reset(time.Now())
				if err := n.srv.route(&ctx, x); err != nil {
					b.Fatal(err)
				}
				if err := n.srv.authenticate(&ctx, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wireGet is the wire form of a GET of path on bench.example with the
// header name/value pairs: the framing guard reads the raw header bytes, so
// benchmarks parse requests as the server does.
func wireGet(path string, headers ...string) string {
	var sb strings.Builder
	sb.WriteString("GET " + path + " HTTP/1.1\r\nHost: bench.example\r\n")
	for i := 0; i+1 < len(headers); i += 2 {
		sb.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	sb.WriteString("\r\n")
	return sb.String()
}

// wireRequest parses one request from its wire form, again and again,
// reusing its reader.
type wireRequest struct {
	raw []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

func newWireRequest(raw string) *wireRequest {
	w := &wireRequest{raw: []byte(raw)}
	w.br = bufio.NewReader(&w.rd)
	return w
}

func (w *wireRequest) read(b *testing.B, req *fasthttp.Request) {
	w.rd.Reset(w.raw)
	w.br.Reset(&w.rd)
	req.Reset()
	if err := req.Read(w.br); err != nil {
		b.Fatal(err)
	}
}
