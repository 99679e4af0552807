package server

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/pkg/model"
)

// BenchmarkHandlerLimitBy is the whole request path with a per-client-IP
// limit (1000 client addresses in turn; directly, and through a trusted
// proxy's X-Forwarded-For) and a reserve-then-settle cost limit (reserve
// 100, the upstream answers a cost of 7) beside the plain keyed path (key
// rate limit, one key). It reports Redis round trips per request from the
// limiter's own count of script calls (decisions, refunds, settlements):
// go test -run '^$' -bench 'HandlerLimitBy' -benchmem ./internal/server/
func BenchmarkHandlerLimitBy(b *testing.B) {
	cb := newCluster(b)
	up := echoUpstream(b).URL
	byIP := keyless("byip", "/byip", up)
	byIP.RateLimit = &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second), LimitBy: []string{model.LimitByClientIP}}
	keyed := keyless("keyed", "/keyed", up)
	keyed.Auth.Mode = model.AuthAPIKey
	costUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Cost", "7")
	}))
	b.Cleanup(costUp.Close)
	units := keyless("units", "/units", costUp.URL)
	units.RateLimit = &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second),
		Units: &model.Units{From: model.UnitsResponseHeader, Header: "X-Cost", Reserve: 100}}
	cb.put(units, byIP, keyed, keyFor(secret, func(k *model.Key) {
		k.Access = []model.AccessRight{{API: "keyed"}}
		k.RateLimit = &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second)}
	}))
	n := trustingNode(cb, "10.0.0.0/8")
	lim := n.srv.limiter.(*limit.Limiter)
	var addrs []*net.TCPAddr
	var xff []string
	for i := 0; i < 1000; i++ {
		addrs = append(addrs, &net.TCPAddr{IP: net.IPv4(192, 0, byte(2+i/250), byte(1+i%250)), Port: 1234})
		xff = append(xff, "198.51."+strconv.Itoa(i/250)+"."+strconv.Itoa(1+i%250)+", 10.1.1.1")
	}
	proxyAddr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 1234}
	cases := []struct {
		name    string
		path    string
		headers []string
		remote  func(i int) *net.TCPAddr
		xff     bool
	}{
		{"keyed", "/keyed/x", []string{"X-API-Key", secret}, func(int) *net.TCPAddr { return addrs[0] }, false},
		{"client_ip", "/byip/x", nil, func(i int) *net.TCPAddr { return addrs[i%len(addrs)] }, false},
		{"client_ip_via_proxy", "/byip/x", nil, func(int) *net.TCPAddr { return proxyAddr }, true},
		{"reserve_settle", "/units/x", nil, func(int) *net.TCPAddr { return addrs[0] }, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			var ctx fasthttp.RequestCtx
			var raw []byte
			br := bufio.NewReader(nil)
			b.ReportAllocs()
			st := lim.Stats()
			before := st.ScriptCalls + st.AdjustCalls
			i := 0
			for b.Loop() {
				raw = append(raw[:0], "GET "+tc.path+" HTTP/1.1\r\nHost: bench.example\r\n"...)
				for j := 0; j+1 < len(tc.headers); j += 2 {
					raw = append(append(append(append(raw, tc.headers[j]...), ": "...), tc.headers[j+1]...), "\r\n"...)
				}
				if tc.xff {
					raw = append(append(append(raw, "X-Forwarded-For: "...), xff[i%len(xff)]...), "\r\n"...)
				}
				raw = append(raw, "\r\n"...)
				req.Reset()
				br.Reset(bytes.NewReader(raw))
				if err := req.Read(br); err != nil {
					b.Fatal(err)
				}
				ctx.Init(&req, tc.remote(i), nil)
				n.srv.handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
				i++
			}
			st = lim.Stats()
			b.ReportMetric(float64(st.ScriptCalls+st.AdjustCalls-before)/float64(i), "redis-calls/op")
		})
	}
}
