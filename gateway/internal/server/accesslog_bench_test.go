package server

import (
	"bufio"
	"bytes"
	"net"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"
)

var rawGet = []byte("GET /open/x HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\n\r\n")

// BenchmarkAccessLog is the whole request path of a keyless API, in
// parallel, with the access log off and logging every request to a file:
// go test -run '^$' -bench AccessLog -benchmem -cpu 2 ./internal/server/
func BenchmarkAccessLog(b *testing.B) {
	cb := newCluster(b)
	up := echoUpstream(b).URL
	cb.put(keyless("open", "/open", up))
	cases := []struct {
		name string
		opts AccessLogOptions
	}{
		{"off", AccessLogOptions{Mode: AccessLogOff}},
		{"all-to-file", AccessLogOptions{Mode: AccessLogAll, Path: filepath.Join(b.TempDir(), "access.log")}},
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	for _, tc := range cases {
		n := cb.node(func(o *Options) { o.AccessLog = tc.opts })
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var req fasthttp.Request
				var ctx fasthttp.RequestCtx
				var rd bytes.Reader
				br := bufio.NewReader(&rd)
				for pb.Next() {
					// parsed from the wire form: the framing guard reads
					// the raw headers
					rd.Reset(rawGet)
					br.Reset(&rd)
					req.Reset()
					if err := req.Read(br); err != nil {
						b.Error(err)
						return
					}
					ctx.Init(&req, remote, nil)
					n.srv.handle(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Errorf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
						return
					}
				}
			})
		})
	}
}

// BenchmarkAccessLogLine is the cost the access log adds to a request: one
// line formatted and queued (mode all, to a file), without the rest of the
// request path, whose machine noise hides it in BenchmarkAccessLog:
// go test -run '^$' -bench AccessLogLine -benchmem -cpu 2 ./internal/server/
func BenchmarkAccessLogLine(b *testing.B) {
	a, err := newAccessLog(AccessLogOptions{Mode: AccessLogAll, Path: filepath.Join(b.TempDir(), "access.log")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close() })
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		var ctx fasthttp.RequestCtx
		req.SetRequestURI("/open/x")
		ctx.Init(&req, remote, nil)
		x := &exchange{path: []byte("/open/x"), rid: []byte("6f1c2a9e03b4-1a2b")}
		for pb.Next() {
			a.write(&ctx, x, "n1", 200, 1234567)
		}
	})
}
