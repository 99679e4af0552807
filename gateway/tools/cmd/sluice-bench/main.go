// Command sluice-bench is the load-test harness behind `make bench`. It
// starts its own redis-server, an embedded NATS with JetStream, an upstream
// and a bare fasthttp proxy hop (each a child process running this binary's
// hidden "upstream" and "hop" subcommands) and a sluice-gateway node, all
// on 127.0.0.1, drives each scenario with wrk (when installed) or a
// built-in generator, and prints requests/s, p50/p99 latency, Redis commands per request and the
// ratio to the bare hop. Results go to .run/bench/results.json and a chart
// to .run/bench/latency.svg.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/tools/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == bench.RoleUpstream || args[0] == bench.RoleHop) {
		return serve(ctx, args[0], args[1:], stderr)
	}
	opt := bench.Defaults()
	root := repoRoot()
	fs := flag.NewFlagSet("sluice-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.Gateway, "gateway", filepath.Join(root, opt.Gateway), "sluice-gateway binary")
	fs.StringVar(&opt.Self, "self", opt.Self, "this harness's binary, re-executed to run the upstream and the bare hop")
	fs.StringVar(&opt.OutDir, "out", filepath.Join(root, opt.OutDir), "folder for results.json, latency.svg and logs")
	fs.DurationVar(&opt.Duration, "duration", opt.Duration, "measured time per scenario")
	fs.DurationVar(&opt.Warmup, "warmup", opt.Warmup, "unmeasured warm-up before each scenario")
	fs.IntVar(&opt.Concurrency, "connections", opt.Concurrency, "concurrent connections")
	fs.IntVar(&opt.Threads, "threads", opt.Threads, "wrk threads")
	fs.StringVar(&opt.Generator, "generator", opt.Generator, "load generator: auto (wrk when installed), wrk or go")
	fs.Int64Var(&opt.MaxRequests, "max-requests", opt.MaxRequests, "bound on requests per scenario (Go generator)")
	fs.Float64Var(&opt.HalfLoad, "half", opt.HalfLoad, "fraction of the full scenario's peak used for the latency scenarios")
	fs.StringVar(&opt.Scenarios, "scenarios", opt.Scenarios, "comma-separated scenarios and groups to run (core, edge, limits, stream, all; default all),\neach with the scenarios its figures are computed against")
	quick := fs.Bool("quick", false, "2s per scenario, short warm-up: checks the harness end to end")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sluice-bench [flags]\n\n"+
			"Benchmarks a sluice-gateway node against a bare fasthttp proxy hop on 127.0.0.1.\n"+
			"Scenarios: upstream direct, bare proxy hop, gateway keyless, gateway with key auth +\n"+
			"rate limit + quota + usage events (exact and lease mode, and exact mode under 100\n"+
			"config changes/s), the same with RS256 and ES256 JWTs, and the bare hop beside the\n"+
			"full gateway (exact, lease) at half its peak (constant rate) for added p99 latency (group core);\n"+
			"HTTPS on the bare hop and the gateway, Redis over TLS, an access log of every request (edge);\n"+
			"a limit per client IP and a cost limit reserved then settled (limits); 10 MiB responses and\n"+
			"SSE streams through a streaming bare hop and the gateway (stream).\n"+
			"The upstream and the bare hop run as child processes of this binary.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *quick {
		opt.Duration, opt.Warmup = 2*time.Second, 500*time.Millisecond
	}
	rep, err := bench.Run(ctx, opt, stdout)
	if rep != nil {
		rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice-bench: %v\n", err)
		return 1
	}
	return 0
}

// serve runs one server of the benchmark in this process, as the harness's
// child: "upstream --listen ADDR" or "hop --listen ADDR --target ADDR",
// the hop optionally also on an HTTPS listener (--tls-listen with --cert
// and --key) and on a listener whose upstream client streams response
// bodies (--stream-listen). It returns when ctx ends (SIGTERM from the
// harness).
func serve(ctx context.Context, role string, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-bench "+role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	target := fs.String("target", "", "upstream address (hop)")
	tlsListen := fs.String("tls-listen", "", "HTTPS address (hop), with --cert and --key")
	certFile := fs.String("cert", "", "PEM certificate of the HTTPS listener")
	keyFile := fs.String("key", "", "PEM key of the HTTPS listener")
	streamListen := fs.String("stream-listen", "", "address of the streaming hop (hop)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	type server struct {
		listen string
		tls    *tls.Config
		h      fasthttp.RequestHandler
	}
	var servers []server
	switch role {
	case bench.RoleUpstream:
		servers = append(servers, server{listen: *listen, h: bench.UpstreamHandler(new(atomic.Int64))})
	case bench.RoleHop:
		if *target == "" {
			fmt.Fprintln(stderr, "sluice-bench hop: --target is required")
			return 2
		}
		hc := bench.NewHopClient(*target, false)
		defer hc.CloseIdleConnections()
		servers = append(servers, server{listen: *listen, h: bench.HopHandler(hc)})
		if *tlsListen != "" {
			cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				fmt.Fprintf(stderr, "sluice-bench hop: --cert/--key: %v\n", err)
				return 2
			}
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			servers = append(servers, server{listen: *tlsListen, tls: cfg, h: bench.PlainUpstream(bench.HopHandler(hc))})
		}
		if *streamListen != "" {
			sc := bench.NewHopClient(*target, true)
			defer sc.CloseIdleConnections()
			servers = append(servers, server{listen: *streamListen, h: bench.HopHandler(sc)})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- bench.Serve(ctx, s.listen, "bench-"+role, s.tls, s.h) }()
	}
	var first error
	for range servers {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // one listener failed: stop the others
		}
	}
	if first != nil {
		fmt.Fprintf(stderr, "sluice-bench %s: %v\n", role, first)
		return 1
	}
	return 0
}

// repoRoot is the nearest folder up from the working directory holding
// go.work, or the working directory.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}
