package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The upstream and the bare hop run as child processes of the harness (the
// harness binary re-executed with a hidden subcommand), like the gateway, so
// every scenario's traffic crosses the same process boundaries: load
// generator -> [hop or gateway] -> upstream, each in its own Go runtime.

// Subcommands of sluice-bench that run one server of the benchmark.
const (
	RoleUpstream = "upstream"
	RoleHop      = "hop"
)

// countPath is the upstream's path that answers with the number of other
// requests it has served; the harness polls it once a second for the
// per-second throughput series.
const countPath = "/__sluice_bench/count"

// upstreamBody is the tiny fixed response of the benchmark upstream.
var upstreamBody = []byte("ok\n")

// UpstreamHandler serves the fixed response and counts requests; countPath
// answers the count.
func UpstreamHandler(count *atomic.Int64) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == countPath {
			ctx.SetContentType("text/plain")
			ctx.SetBodyString(strconv.FormatInt(count.Load(), 10))
			return
		}
		count.Add(1)
		ctx.SetContentType("text/plain")
		ctx.SetBody(upstreamBody)
	}
}

// HopHandler is the floor every gateway scenario is compared with: it
// forwards each request to the upstream with HostClient.Do, and nothing
// else.
func HopHandler(hc *fasthttp.HostClient) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}
}

// NewHopClient is the bare hop's client of the upstream at addr.
func NewHopClient(addr string) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: addr, MaxConns: 4096}
}

// Serve runs h on listen until ctx ends, then shuts down.
func Serve(ctx context.Context, listen, name string, h fasthttp.RequestHandler) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return ServeListener(ctx, l, name, h)
}

// ServeListener serves h on l until ctx ends (or serving fails).
func ServeListener(ctx context.Context, l net.Listener, name string, h fasthttp.RequestHandler) error {
	srv := &fasthttp.Server{Handler: h, Name: name, Concurrency: 1 << 16}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Shutdown()
	}
}

// child is a server of the benchmark running as a child process.
type child struct {
	*process
	addr string
}

// startChild re-executes the harness binary (self) with the role's
// subcommand on a free loopback port and waits until it answers.
func (r *run) startChild(ctx context.Context, role string, args ...string) (*child, error) {
	if r.opt.Self == "" {
		return nil, errors.New("bench: no harness binary to run the " + role + " from (Options.Self)")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(r.opt.OutDir, role+".log")
	p, err := startProcess(role, logPath, nil, r.opt.Self, append([]string{role, "--listen", addr}, args...)...)
	if err != nil {
		return nil, err
	}
	c := &child{process: p, addr: addr}
	err = poll(ctx, 10*time.Second, func() error {
		if p.exited() {
			return fmt.Errorf("%s exited (see %s)", role, logPath)
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	return c, nil
}

// upstreamCount reads how many requests the upstream has served.
func (r *run) upstreamCount() (int64, error) {
	code, body, err := get("http://"+r.upstreamAddr+countPath, nil)
	if err != nil {
		return 0, err
	}
	if code != fasthttp.StatusOK {
		return 0, fmt.Errorf("upstream count: status %d", code)
	}
	return strconv.ParseInt(string(body), 10, 64)
}

// selfPath is the running executable, for Options.Self.
func selfPath() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	return p
}
