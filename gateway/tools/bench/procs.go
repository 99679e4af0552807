package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// Paths of the upstream beside its fixed answer, all under benchPrefix so
// the ordinary request pays one prefix check.
const (
	benchPrefix = "/__sluice_bench/"
	// countPath answers the number of other requests served; the harness
	// polls it once a second for the per-second throughput series.
	countPath = benchPrefix + "count"
	// costPath answers as / does, with the request's cost in costHeader
	// (the gateway-cost scenario settles its reservation from it).
	costPath = benchPrefix + "cost"
	// bigPath answers streamBytes bytes; ssePath a server-sent event stream.
	bigPath = benchPrefix + "big"
	ssePath = benchPrefix + "sse"
)

// costHeader carries the cost the upstream reports; upstreamCost is it.
const (
	costHeader   = "X-Bench-Cost"
	upstreamCost = "5"
)

// upstreamBody is the tiny fixed response of the benchmark upstream.
var upstreamBody = []byte("ok\n")

// UpstreamHandler serves the fixed response and counts requests, and the
// paths under benchPrefix.
func UpstreamHandler(count *atomic.Int64) fasthttp.RequestHandler {
	big := make([]byte, streamBytes)
	return func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		if bytes.HasPrefix(path, []byte(benchPrefix)) {
			switch string(path) {
			case countPath:
				ctx.SetContentType("text/plain")
				ctx.SetBodyString(strconv.FormatInt(count.Load(), 10))
				return
			case costPath:
				ctx.Response.Header.Set(costHeader, upstreamCost)
			case bigPath:
				count.Add(1)
				ctx.SetContentType("application/octet-stream")
				ctx.Response.SetBodyRaw(big)
				return
			case ssePath:
				count.Add(1)
				serveSSE(ctx)
				return
			}
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

// PlainUpstream wraps the HTTPS hop's handler: the request arrived over
// TLS, the upstream is reached over plain HTTP (as the gateway does).
func PlainUpstream(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Request.URI().SetScheme("http")
		h(ctx)
	}
}

// NewHopClient is the bare hop's client of the upstream at addr. A
// streaming client hands each response body on unread, as it arrives
// (the floor of the streaming scenarios); the server writes it to the
// client chunk by chunk.
func NewHopClient(addr string, stream bool) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: addr, MaxConns: 4096, StreamResponseBody: stream}
}

// Serve runs h on listen until ctx ends, then shuts down. With tlsCfg,
// it serves HTTPS.
func Serve(ctx context.Context, listen, name string, tlsCfg *tls.Config, h fasthttp.RequestHandler) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		l = tls.NewListener(l, tlsCfg)
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
	if err := waitListening(ctx, p, addr); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w (see %s)", role, err, logPath)
	}
	return c, nil
}

// hopAddrs are the bare hop's listeners: plain HTTP, HTTPS (the run's
// certificate), and plain HTTP with a streaming client.
type hopAddrs struct{ plain, tls, stream string }

// startHop runs the bare hop child with its three listeners.
func (r *run) startHop(ctx context.Context) error {
	var addrs [2]string
	for i := range addrs {
		port, err := freePort()
		if err != nil {
			return err
		}
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
	}
	hop, err := r.startChild(ctx, RoleHop, "--target", r.upstreamAddr, "--tls-listen", addrs[0],
		"--cert", r.certs.CertFile, "--key", r.certs.KeyFile, "--stream-listen", addrs[1])
	if err != nil {
		return err
	}
	r.onClose(hop.stop)
	r.procs.hop = hop.process
	r.hop = hopAddrs{plain: hop.addr, tls: addrs[0], stream: addrs[1]}
	for _, a := range addrs {
		if err := waitListening(ctx, hop.process, a); err != nil {
			return fmt.Errorf("%s: %w", RoleHop, err)
		}
	}
	return nil
}

// waitListening polls until addr accepts connections or p exits.
func waitListening(ctx context.Context, p *process, addr string) error {
	return poll(ctx, 10*time.Second, func() error {
		if p.exited() {
			return fmt.Errorf("%s exited (see its log)", p.name)
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// get is the package get, trusting the run's CA for https URLs.
func (r *run) get(url string, headers [][2]string) (int, []byte, error) {
	if !strings.HasPrefix(url, "https://") {
		return get(url, headers)
	}
	c := &fasthttp.Client{TLSConfig: r.certs.clientConfig()}
	defer c.CloseIdleConnections()
	return do(c, url, headers)
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
