package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	// Scenarios selects what runs: a comma-separated list of scenario and
	// group names (see Select); empty runs every scenario.
	Scenarios string
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
	// The edge: TLS on the traffic listener, Redis over TLS, an access log.
	ScenBareHopTLS = "bare-proxy-hop-https"
	ScenHTTPS      = "gateway-https"
	ScenRedisTLS   = "gateway-redis-tls"
	ScenAccessLog  = "gateway-accesslog"
	// Limits beyond gateway-full's: per client IP, and by cost.
	ScenIP   = "gateway-ip"
	ScenCost = "gateway-cost"
	// Streamed responses, through the streaming bare hop and the gateway.
	ScenStreamHop = "stream-10mib-hop"
	ScenStream    = "stream-10mib"
	ScenSSEHop    = "sse-hop"
	ScenSSE       = "sse"
)

type scenario struct {
	name, desc string
	url        string
	headers    [][2]string
	gateway    bool
	rate       float64 // constant rate; 0 = as fast as possible
	profile    bool    // fetch the gateway's CPU profile while it runs
	churn      bool    // make config changes while it runs
	tls        bool    // the URL is https: clients trust the run's CA
	node       *node   // a gateway node of its own, started for this scenario only
	stream     string  // streamBytes or streamSSE: measured by the stream generator
}

// run holds what one benchmark run started.
type run struct {
	opt          Options
	out          io.Writer
	upstreamAddr string
	hop          hopAddrs
	rdb          *redis.Client
	redisTLSAddr string // Redis's TLS port
	nc           *nats.Conn
	natsURL      string
	certs        *certs
	signers      []*jwtSigner
	closers      []func()
	procs        struct{ hop, upstream, redis *process }
	// gw is the main gateway node; active the node the current scenario
	// measures (its CPU, metrics, profile and memory are read).
	gw, active *node
	// Nodes started for one scenario each.
	redisTLSNode, accessLogNode *node
	churn                       *churner
	sel                         map[string]bool // the scenarios to run
	wrk                         string
	gwErr                       error
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
		if r.sel[s.name] {
			rep.add(r.scenario(ctx, s))
		}
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
	sel, err := Select(opt.Scenarios)
	if err != nil {
		return nil, err
	}
	r := &run{opt: opt, out: out, sel: sel}
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
// benchmark config and starts the main gateway node. A gateway that does
// not start is not an error: its scenarios are reported as skipped.
func (r *run) start(ctx context.Context) error {
	var err error
	if r.certs, err = newCerts(filepath.Join(r.opt.OutDir, "tls")); err != nil {
		return fmt.Errorf("bench certificates: %w", err)
	}
	redisProc, rdb, tlsAddr, err := startRedis(ctx, r.opt.OutDir, r.certs)
	if err != nil {
		return err
	}
	r.onClose(redisProc.stop)
	r.procs.redis = redisProc
	r.onClose(func() { _ = rdb.Close() })
	r.rdb, r.redisTLSAddr = rdb, tlsAddr
	if r.natsURL, err = r.startNATS(ctx); err != nil {
		return err
	}
	up, err := r.startChild(ctx, RoleUpstream)
	if err != nil {
		return err
	}
	r.onClose(up.stop)
	r.procs.upstream = up.process
	r.upstreamAddr = up.addr
	if err := r.startHop(ctx); err != nil {
		return err
	}
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
	if err := r.planNodes(); err != nil {
		return err
	}
	r.onClose(r.gw.stop)
	r.active = r.gw
	if err := r.startNode(ctx, r.gw); err != nil {
		r.gwErr = err
		fmt.Fprintf(r.out, "gateway scenarios skipped: %v\n", err)
	}
	return nil
}

// planNodes plans the main node (with an HTTPS listener beside the plain
// one) and the nodes of the Redis-over-TLS and access-log scenarios.
func (r *run) planNodes() error {
	plain := fmt.Sprintf("{addr: %q}", r.rdb.Options().Addr)
	var err error
	if r.gw, err = r.planNode("gateway-1", plain, "", true); err != nil {
		return err
	}
	redisTLS := fmt.Sprintf("{addr: %q, tls: {enabled: true, ca_file: %q, server_name: \"127.0.0.1\"}}", r.redisTLSAddr, r.certs.CAFile)
	if r.redisTLSNode, err = r.planNode("gateway-redis-tls", redisTLS, "", false); err != nil {
		return err
	}
	accessLog := fmt.Sprintf("access_log: {mode: all, path: %q}\n", filepath.Join(r.opt.OutDir, "access.log"))
	r.accessLogNode, err = r.planNode("gateway-accesslog", plain, accessLog, false)
	return err
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
	costKey  = [][2]string{{"X-API-Key", benchCostKey}}
)

// throughputScenarios are every scenario but the half-load ones, in the
// order they run. gateway-full+churn follows gateway-full so that the two,
// compared with each other, run as close together in time as they can.
func (r *run) throughputScenarios() ([]scenario, error) {
	gw, hop := r.gw.url, "http://"+r.hop.plain
	scens := []scenario{
		{name: ScenUpstream, desc: "load generator -> upstream", url: "http://" + r.upstreamAddr + "/"},
		{name: ScenBareHop, desc: "fasthttp HostClient.Do hop, nothing else (the floor)", url: hop + "/"},
		{name: ScenKeyless, desc: "gateway, keyless API", url: gw + "/open/", gateway: true},
		{name: ScenFull, desc: "gateway, key auth + rate limit (exact) + quota + usage events", url: gw + "/full/", headers: apiKey, gateway: true, profile: true},
		{name: ScenChurn, desc: fmt.Sprintf("gateway-full while the config changes %d times/s (store + NATS)", churnRate),
			url: gw + "/full/", headers: apiKey, gateway: true, churn: true, profile: true},
		{name: ScenFullLease, desc: "as gateway-full with the rate limit in lease mode", url: gw + "/lease/", headers: leaseKey, gateway: true},
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
			url:  gw + jwtPath(sg.alg), headers: [][2]string{{"Authorization", "Bearer " + tok}}, gateway: true})
	}
	return append(scens,
		scenario{name: ScenBareHopTLS, desc: "the bare hop over HTTPS (TLS 1.3, keep-alive), plain HTTP to the upstream",
			url: "https://" + r.hop.tls + "/", tls: true},
		scenario{name: ScenHTTPS, desc: "gateway-full over HTTPS on the traffic listener (TLS 1.3, keep-alive)",
			url: r.gw.tlsURL + "/full/", headers: apiKey, gateway: true, tls: true},
		scenario{name: ScenRedisTLS, desc: "gateway-full on a node talking to Redis over TLS",
			url: r.redisTLSNode.url + "/full/", headers: apiKey, gateway: true, node: r.redisTLSNode},
		scenario{name: ScenAccessLog, desc: "gateway-full on a node logging every request to a file (access_log mode all)",
			url: r.accessLogNode.url + "/full/", headers: apiKey, gateway: true, node: r.accessLogNode},
		scenario{name: ScenIP, desc: "gateway, keyless API with an exact rate limit per client IP (limit_by client_ip)",
			url: gw + "/ip/", gateway: true},
		scenario{name: ScenCost, desc: "as gateway-full with the rate limit counting units: reserve, then settle from a response header",
			url: gw + "/cost" + costPath, headers: costKey, gateway: true},
		scenario{name: ScenStreamHop, desc: fmt.Sprintf("%d MiB responses through the streaming bare hop", streamBytes>>20),
			url: "http://" + r.hop.stream + bigPath, stream: streamBig},
		scenario{name: ScenStream, desc: fmt.Sprintf("%d MiB responses through the gateway (API streaming min_bytes)", streamBytes>>20),
			url: gw + "/stream" + bigPath, gateway: true, stream: streamBig},
		scenario{name: ScenSSEHop, desc: fmt.Sprintf("SSE streams (%d events, %v apart) through the streaming bare hop", sseEvents, sseInterval),
			url: "http://" + r.hop.stream + ssePath, stream: streamSSE},
		scenario{name: ScenSSE, desc: fmt.Sprintf("SSE streams (%d events, %v apart) through the gateway (text/event-stream)", sseEvents, sseInterval),
			url: gw + "/stream" + ssePath, gateway: true, stream: streamSSE},
	), nil
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
		{ScenFull, ScenBareHopHalf, ScenFullHalf, r.gw.url + "/full/", apiKey},
		{ScenFullLease, ScenBareHopHalfLease, ScenLeaseHalf, r.gw.url + "/lease/", leaseKey},
	}
	for i, p := range pairs {
		if !r.sel[p.hopName] && !r.sel[p.gwName] {
			continue
		}
		peak := rep.find(p.peak)
		if peak == nil && i == 0 {
			peak = rep.find(ScenBareHop)
		}
		if peak == nil || peak.RPS <= 0 {
			continue
		}
		rate := peak.RPS * r.opt.HalfLoad
		for _, s := range []scenario{
			{name: p.hopName, desc: "bare hop at the constant rate below", url: "http://" + r.hop.plain + "/"},
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

// check sends one request and wants a 2xx: a scenario that fails here would
// only measure error answers.
func (r *run) check(ctx context.Context, s scenario) error {
	var code int
	var body []byte
	err := poll(ctx, 10*time.Second, func() error {
		var err error
		code, body, err = r.get(s.url, s.headers)
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
