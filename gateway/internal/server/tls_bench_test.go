package server

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/edgetls"
)

// BenchmarkEdgeTLS compares the same keyless API served over plain HTTP
// and over HTTPS (TLS 1.3, ECDSA P-256), with keep-alive connections, and
// HTTPS with a new connection (a full handshake) per request. The
// upstream is an in-process fasthttp server. Each case logs its time per
// request relative to plain HTTP:
//
//	go test -run '^$' -bench EdgeTLS -benchtime 3s ./internal/server/
func BenchmarkEdgeTLS(b *testing.B) {
	c := newCluster(b)
	up := fastUpstream(b)
	c.put(keyless("e", "/e", up))
	e := newEdge(b)
	cf, kf := e.ca.Server(b, "gw.test").Write(b, e.dir, "gw")
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: cf, KeyFile: kf}}))
	tlsCfg := &tls.Config{RootCAs: e.ca.Pool(), ServerName: "gw.test"}
	cases := []struct {
		name  string
		addr  string
		tls   bool
		close bool
	}{
		{"http-keepalive", n.srv.Addr(), false, false},
		{"https-keepalive", n.srv.TLSAddr(), true, false},
		{"https-handshake-per-request", n.srv.TLSAddr(), true, true},
	}
	var base float64
	for _, tc := range cases {
		var perOp float64
		b.Run(tc.name, func(b *testing.B) {
			url := "http://gw.test/e/x"
			if tc.tls {
				url = "https://gw.test/e/x"
			}
			hc := &fasthttp.HostClient{Addr: tc.addr, IsTLS: tc.tls, TLSConfig: tlsCfg, MaxConns: 64, ReadTimeout: 5 * time.Second}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for pb.Next() {
					req.SetRequestURI(url)
					if tc.close {
						req.SetConnectionClose()
					}
					if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Errorf("status %d: %v", resp.StatusCode(), err)
						return
					}
				}
			})
			perOp = float64(time.Since(start).Nanoseconds()) / float64(b.N)
		})
		if tc.name == "http-keepalive" {
			base = perOp
		} else if base > 0 {
			b.Logf("%s: %.0f ns/request, %.2f× plain HTTP keep-alive (%.0f ns/request)", tc.name, perOp, perOp/base, base)
		}
	}
}
