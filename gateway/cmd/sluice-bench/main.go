// Command sluice-bench is the load-test harness behind `make bench`. It
// starts its own redis-server, an embedded NATS with JetStream, an upstream,
// a bare fasthttp proxy hop and a sluice-gateway node, all on 127.0.0.1,
// drives each scenario with wrk (when installed) or a built-in generator,
// and prints requests/s, p50/p99 latency, Redis commands per request and the
// ratio to the bare hop. Results go to .run/bench/results.json and a chart
// to .run/bench/latency.svg.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opt := bench.Defaults()
	root := repoRoot()
	fs := flag.NewFlagSet("sluice-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.Gateway, "gateway", filepath.Join(root, opt.Gateway), "sluice-gateway binary")
	fs.StringVar(&opt.OutDir, "out", filepath.Join(root, opt.OutDir), "folder for results.json, latency.svg and logs")
	fs.DurationVar(&opt.Duration, "duration", opt.Duration, "measured time per scenario")
	fs.DurationVar(&opt.Warmup, "warmup", opt.Warmup, "unmeasured warm-up before each scenario")
	fs.IntVar(&opt.Concurrency, "connections", opt.Concurrency, "concurrent connections")
	fs.IntVar(&opt.Threads, "threads", opt.Threads, "wrk threads")
	fs.StringVar(&opt.Generator, "generator", opt.Generator, "load generator: auto (wrk when installed), wrk or go")
	fs.Int64Var(&opt.MaxRequests, "max-requests", opt.MaxRequests, "bound on requests per scenario (Go generator)")
	fs.Float64Var(&opt.HalfLoad, "half", opt.HalfLoad, "fraction of the full scenario's peak used for the latency scenarios")
	quick := fs.Bool("quick", false, "2s per scenario, short warm-up: checks the harness end to end")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: sluice-bench [flags]\n\n"+
			"Benchmarks a sluice-gateway node against a bare fasthttp proxy hop on 127.0.0.1.\n"+
			"Scenarios: upstream direct, bare proxy hop, gateway keyless, gateway with key auth +\n"+
			"rate limit + quota + usage events (exact and lease mode), and the bare hop and the\n"+
			"full gateway at half the full gateway's peak (constant rate) for added p99 latency.\n\nFlags:")
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
