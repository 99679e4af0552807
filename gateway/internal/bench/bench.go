package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/bus"
)

// Options configure a benchmark run.
type Options struct {
	Gateway     string        // path of the sluice-gateway binary
	OutDir      string        // results, chart and logs go here
	Duration    time.Duration // measured time per scenario
	Warmup      time.Duration // unmeasured time before each scenario
	Concurrency int           // connections
	Threads     int           // wrk threads
	Generator   string        // auto (wrk when installed), wrk or go
	MaxRequests int64         // bound per scenario for the Go generator
	HalfLoad    float64       // fraction of the full scenario's peak for the latency scenarios
}

// Defaults returns the options of `make bench`.
func Defaults() Options {
	return Options{
		Gateway: "bin/sluice-gateway", OutDir: ".run/bench",
		Duration: 10 * time.Second, Warmup: time.Second,
		Concurrency: 64, Threads: 2, Generator: "auto",
		MaxRequests: 20_000_000, HalfLoad: 0.5,
	}
}

// Scenario names.
const (
	ScenUpstream    = "upstream-direct"
	ScenBareHop     = "bare-proxy-hop"
	ScenKeyless     = "gateway-keyless"
	ScenFull        = "gateway-full"
	ScenFullLease   = "gateway-full-lease"
	ScenBareHopHalf = "bare-proxy-hop@half"
	ScenFullHalf    = "gateway-full@half"
)

type scenario struct {
	name, desc string
	url        string
	headers    [][2]string
	gateway    bool
	rate       float64 // constant rate; 0 = as fast as possible
	profile    bool    // fetch the gateway's CPU profile while it runs
}

// run holds what one benchmark run started.
type run struct {
	opt      Options
	out      io.Writer
	upstream atomic.Int64
	rdb      *redis.Client
	wrk      string
	gwURL    string
	opsURL   string
	gwErr    error
}

// Run starts everything, runs every scenario and writes the report.
func Run(ctx context.Context, opt Options, out io.Writer) (*Report, error) {
	if opt.Duration <= 0 || opt.Concurrency <= 0 {
		return nil, errors.New("bench: duration and concurrency must be positive")
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, err
	}
	r := &run{opt: opt, out: out}
	switch opt.Generator {
	case "auto", "":
		r.wrk = WrkPath()
	case "wrk":
		if r.wrk = WrkPath(); r.wrk == "" {
			return nil, errors.New("bench: --generator wrk but wrk is not installed")
		}
	case "go":
	default:
		return nil, fmt.Errorf("bench: unknown generator %q (auto, wrk, go)", opt.Generator)
	}

	redisProc, rdb, err := startRedis(ctx, opt.OutDir)
	if err != nil {
		return nil, err
	}
	defer redisProc.stop()
	defer rdb.Close()
	r.rdb = rdb
	natsDir, err := os.MkdirTemp(opt.OutDir, "nats-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(natsDir)
	ns, err := startNATS(natsDir)
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	if err := ensureStream(ctx, ns.ClientURL()); err != nil {
		return nil, err
	}
	up, err := startUpstream(&r.upstream)
	if err != nil {
		return nil, err
	}
	defer up.close()
	hop, hc, err := startBareHop(up.addr)
	if err != nil {
		return nil, err
	}
	defer hop.close()
	defer hc.CloseIdleConnections()
	if err := seed(ctx, rdb, up.addr); err != nil {
		return nil, err
	}
	gw, err := r.startGateway(ctx, rdb.Options().Addr, ns.ClientURL())
	defer gw.stop()
	if err != nil {
		r.gwErr = err
		fmt.Fprintf(out, "gateway scenarios skipped: %v\n", err)
	}

	rep := newReport(opt, r.generatorName(), rdb)
	key := [][2]string{{"X-API-Key", benchKey}}
	scens := []scenario{
		{name: ScenUpstream, desc: "load generator -> upstream", url: "http://" + up.addr + "/"},
		{name: ScenBareHop, desc: "fasthttp HostClient.Do hop, nothing else (the floor)", url: "http://" + hop.addr + "/"},
		{name: ScenKeyless, desc: "gateway, keyless API", url: r.gwURL + "/open/", gateway: true},
		{name: ScenFull, desc: "gateway, key auth + rate limit (exact) + quota + usage events", url: r.gwURL + "/full/", headers: key, gateway: true, profile: true},
		{name: ScenFullLease, desc: "as gateway-full with the rate limit in lease mode", url: r.gwURL + "/lease/",
			headers: [][2]string{{"X-API-Key", benchLeaseKey}}, gateway: true},
	}
	for _, s := range scens {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.add(r.scenario(ctx, s))
	}
	// Half of the full gateway's peak; without a gateway, half of the bare
	// hop's, so the constant-rate path is still exercised.
	peak := rep.find(ScenFull)
	if peak == nil {
		peak = rep.find(ScenBareHop)
	}
	if peak != nil && peak.RPS > 0 {
		rate := peak.RPS * opt.HalfLoad
		for _, s := range []scenario{
			{name: ScenBareHopHalf, desc: "bare hop at the constant rate below", url: "http://" + hop.addr + "/"},
			{name: ScenFullHalf, desc: "gateway-full at half its peak, constant rate", url: r.gwURL + "/full/", headers: key, gateway: true},
		} {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			s.rate = rate
			s.desc = fmt.Sprintf("%s (%.0f req/s)", s.desc, rate)
			rep.add(r.scenario(ctx, s))
		}
	}
	rep.finish()
	return rep, rep.write(opt.OutDir)
}

func (r *run) generatorName() string {
	if r.wrk != "" {
		return "wrk"
	}
	return "go"
}

func ensureStream(ctx context.Context, url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Bounded, so a long run cannot fill the disk with usage events.
	_, err = bus.EnsureUsageStream(ctx, js, bus.StreamOptions{MaxAge: time.Hour, MaxBytes: 512 << 20})
	return err
}

// startGateway runs one sluice-gateway node against the harness's Redis and
// NATS and waits until it is ready and routes the seeded APIs.
func (r *run) startGateway(ctx context.Context, redisAddr, natsURL string) (*process, error) {
	if _, err := os.Stat(r.opt.Gateway); err != nil {
		return nil, fmt.Errorf("%s is not built (make build)", r.opt.Gateway)
	}
	lp, err := freePort()
	if err != nil {
		return nil, err
	}
	op, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# Written by sluice-bench.
node_id: bench-1
listen: "127.0.0.1:%d"
ops_listen: "127.0.0.1:%d"
redis: {addr: "%s"}
nats: {url: "%s"}
log: {level: warn, format: json}
`, lp, op, redisAddr, natsURL)
	cfgPath := filepath.Join(r.opt.OutDir, "gateway-1.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(r.opt.OutDir, "gateway-1.log")
	p, err := startProcess("gateway-1", logPath, r.opt.Gateway, "--config", cfgPath)
	if err != nil {
		return nil, err
	}
	r.gwURL = "http://127.0.0.1:" + strconv.Itoa(lp)
	r.opsURL = "http://127.0.0.1:" + strconv.Itoa(op)
	ready := "http://127.0.0.1:" + strconv.Itoa(op) + "/ready"
	err = poll(ctx, 30*time.Second, func() error {
		if p.exited() {
			return fmt.Errorf("sluice-gateway exited (see %s)", logPath)
		}
		code, _, err := get(ready, nil)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("%s answered %d", ready, code)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("gateway not ready: %w", err)
	}
	fmt.Fprintf(r.out, "gateway ready on %s (log %s)\n", r.gwURL, logPath)
	return p, nil
}

// check sends one request and wants a 2xx: a scenario that fails here would
// only measure error answers.
func (r *run) check(ctx context.Context, s scenario) error {
	var code int
	var body []byte
	err := poll(ctx, 10*time.Second, func() error {
		var err error
		code, body, err = get(s.url, s.headers)
		if err != nil {
			return err
		}
		if code < 200 || code > 299 {
			return fmt.Errorf("status %d: %.200s", code, body)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.url, err)
	}
	return nil
}
