package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// Options configure a benchmark run.
type Options struct {
	Gateway     string        // path of the sluice-gateway binary
	Self        string        // harness binary, re-executed to run the upstream and the bare hop
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
		Gateway: "bin/sluice-gateway", Self: selfPath(), OutDir: ".run/bench",
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
	ScenChurn       = "gateway-full+churn"
	ScenFullLease   = "gateway-full-lease"
	ScenJWTRS256    = "gateway-jwt-rs256"
	ScenJWTES256    = "gateway-jwt-es256"
	ScenBareHopHalf = "bare-proxy-hop@half"
	ScenFullHalf    = "gateway-full@half"
	// The lease mode's latency pair, at half of gateway-full-lease's peak.
	ScenBareHopHalfLease = "bare-proxy-hop@half-lease"
	ScenLeaseHalf        = "gateway-full-lease@half"
)

type scenario struct {
	name, desc string
	url        string
	headers    [][2]string
	gateway    bool
	rate       float64 // constant rate; 0 = as fast as possible
	profile    bool    // fetch the gateway's CPU profile while it runs
	churn      bool    // make config changes while it runs
}

// run holds what one benchmark run started.
type run struct {
	opt          Options
	out          io.Writer
	upstreamAddr string
	hopAddr      string
	rdb          *redis.Client
	nc           *nats.Conn
	signers      []*jwtSigner
	closers      []func()
	procs        struct{ gateway, hop, upstream, redis *process }
	churn        *churner
	wrk          string
	gwURL        string
	opsURL       string
	gwErr        error
}

// Run starts everything, runs every scenario and writes the report.
func Run(ctx context.Context, opt Options, out io.Writer) (*Report, error) {
	r, err := newRun(opt, out)
	if err != nil {
		return nil, err
	}
	defer r.close()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	rep := newReport(opt, r.generatorName(), r.rdb)
	scens, err := r.throughputScenarios()
	if err != nil {
		return nil, err
	}
	for _, s := range scens {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.add(r.scenario(ctx, s))
	}
	if err := r.halfLoad(ctx, rep); err != nil {
		return rep, err
	}
	rep.finish()
	return rep, rep.write(opt.OutDir)
}

func newRun(opt Options, out io.Writer) (*run, error) {
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
	return r, nil
}

// onClose registers f to run at close, in reverse order of registration.
func (r *run) onClose(f func()) { r.closers = append(r.closers, f) }

func (r *run) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// start runs Redis, NATS, the upstream and bare-hop children, seeds the
// benchmark config and starts the gateway. A gateway that does not start
// is not an error: its scenarios are reported as skipped.
func (r *run) start(ctx context.Context) error {
	redisProc, rdb, err := startRedis(ctx, r.opt.OutDir)
	if err != nil {
		return err
	}
	r.onClose(redisProc.stop)
	r.procs.redis = redisProc
	r.onClose(func() { _ = rdb.Close() })
	r.rdb = rdb
	natsURL, err := r.startNATS(ctx)
	if err != nil {
		return err
	}
	up, err := r.startChild(ctx, RoleUpstream)
	if err != nil {
		return err
	}
	r.onClose(up.stop)
	r.procs.upstream = up.process
	r.upstreamAddr = up.addr
	hop, err := r.startChild(ctx, RoleHop, "--target", up.addr)
	if err != nil {
		return err
	}
	r.onClose(hop.stop)
	r.procs.hop = hop.process
	r.hopAddr = hop.addr
	for _, alg := range []string{model.AlgRS256, model.AlgES256} {
		sg, err := newJWTSigner(alg)
		if err != nil {
			return fmt.Errorf("jwt %s key: %w", alg, err)
		}
		r.signers = append(r.signers, sg)
	}
	st := store.New(rdb, 0)
	if err := seed(ctx, st, up.addr, r.signers); err != nil {
		return err
	}
	r.churn = &churner{st: st, nc: r.nc, upstream: up.addr, rate: churnRate, next: 1}
	gw, err := r.startGateway(ctx, rdb.Options().Addr, natsURL)
	r.onClose(gw.stop)
	r.procs.gateway = gw
	if err != nil {
		r.gwErr = err
		fmt.Fprintf(r.out, "gateway scenarios skipped: %v\n", err)
	}
	return nil
}

// startNATS runs the embedded NATS server with the usage stream and
// connects the harness to it (for the churn's announcements).
func (r *run) startNATS(ctx context.Context) (string, error) {
	natsDir, err := os.MkdirTemp(r.opt.OutDir, "nats-")
	if err != nil {
		return "", err
	}
	r.onClose(func() { _ = os.RemoveAll(natsDir) })
	ns, err := startNATS(natsDir)
	if err != nil {
		return "", err
	}
	r.onClose(ns.Shutdown)
	if err := ensureStream(ctx, ns.ClientURL()); err != nil {
		return "", err
	}
	if r.nc, err = nats.Connect(ns.ClientURL()); err != nil {
		return "", fmt.Errorf("nats connect: %w", err)
	}
	r.onClose(r.nc.Close)
	return ns.ClientURL(), nil
}

var (
	apiKey   = [][2]string{{"X-API-Key", benchKey}}
	leaseKey = [][2]string{{"X-API-Key", benchLeaseKey}}
)

// throughputScenarios are the scenarios run as fast as the server answers.
// gateway-full+churn follows gateway-full so that the two, compared with
// each other, run as close together in time as they can.
func (r *run) throughputScenarios() ([]scenario, error) {
	scens := []scenario{
		{name: ScenUpstream, desc: "load generator -> upstream", url: "http://" + r.upstreamAddr + "/"},
		{name: ScenBareHop, desc: "fasthttp HostClient.Do hop, nothing else (the floor)", url: "http://" + r.hopAddr + "/"},
		{name: ScenKeyless, desc: "gateway, keyless API", url: r.gwURL + "/open/", gateway: true},
		{name: ScenFull, desc: "gateway, key auth + rate limit (exact) + quota + usage events", url: r.gwURL + "/full/", headers: apiKey, gateway: true, profile: true},
		{name: ScenChurn, desc: fmt.Sprintf("gateway-full while the config changes %d times/s (store + NATS)", churnRate),
			url: r.gwURL + "/full/", headers: apiKey, gateway: true, churn: true, profile: true},
		{name: ScenFullLease, desc: "as gateway-full with the rate limit in lease mode", url: r.gwURL + "/lease/", headers: leaseKey, gateway: true},
	}
	now := time.Now()
	names := map[string]string{model.AlgRS256: ScenJWTRS256, model.AlgES256: ScenJWTES256}
	for _, sg := range r.signers {
		tok, err := sg.token("bench-client", now)
		if err != nil {
			return nil, fmt.Errorf("jwt %s token: %w", sg.alg, err)
		}
		scens = append(scens, scenario{name: names[sg.alg],
			desc: fmt.Sprintf("as gateway-full with one %s JWT (static PEM key, scope -> policy) instead of the API key", sg.alg),
			url:  r.gwURL + jwtPath(sg.alg), headers: [][2]string{{"Authorization", "Bearer " + tok}}, gateway: true})
	}
	return scens, nil
}

// halfLoad runs, for gateway-full and gateway-full-lease, the bare hop and
// the gateway scenario at the same constant rate, half of the gateway
// scenario's peak, for the added p99 latency. Without a gateway, the bare
// hop runs at half of its own peak, so the constant-rate path is still
// exercised.
func (r *run) halfLoad(ctx context.Context, rep *Report) error {
	pairs := []struct {
		peak, hopName, gwName, gwURL string
		headers                      [][2]string
	}{
		{ScenFull, ScenBareHopHalf, ScenFullHalf, r.gwURL + "/full/", apiKey},
		{ScenFullLease, ScenBareHopHalfLease, ScenLeaseHalf, r.gwURL + "/lease/", leaseKey},
	}
	for i, p := range pairs {
		peak := rep.find(p.peak)
		if peak == nil && i == 0 {
			peak = rep.find(ScenBareHop)
		}
		if peak == nil || peak.RPS <= 0 {
			continue
		}
		rate := peak.RPS * r.opt.HalfLoad
		for _, s := range []scenario{
			{name: p.hopName, desc: "bare hop at the constant rate below", url: "http://" + r.hopAddr + "/"},
			{name: p.gwName, desc: fmt.Sprintf("%s at half its peak, constant rate", p.peak), url: p.gwURL, headers: p.headers, gateway: true},
		} {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.rate = rate
			s.desc = fmt.Sprintf("%s (%.0f req/s)", s.desc, rate)
			rep.add(r.scenario(ctx, s))
		}
	}
	return nil
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
	// Bounded, so a long run cannot fill the disk with usage events. The
	// harness owns the stack it starts, so it sets the stream's limits.
	_, err = bus.ConfigureUsageStream(ctx, js, bus.Names{}, bus.StreamOptions{MaxAge: time.Hour, MaxBytes: 512 << 20})
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
	// Profiling through the environment: a gateway without the setting
	// ignores the variable, where its strict YAML would refuse the field.
	p, err := startProcess("gateway-1", logPath, []string{"SLUICE_PROFILING=true"}, r.opt.Gateway, "--config", cfgPath)
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
