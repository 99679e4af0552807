package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// probeRate is the rate of the latency probe that runs beside wrk, whose
// summary has no per-second latencies.
const probeRate = 20

// Point is one second of a scenario.
type Point struct {
	Second int     `json:"second"`
	RPS    float64 `json:"rps"` // requests the upstream served in that second
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
}

// Result is what one scenario measured.
type Result struct {
	Name          string  `json:"name"`
	Desc          string  `json:"description"`
	URL           string  `json:"url"`
	Generator     string  `json:"generator"`
	Concurrency   int     `json:"concurrency"`
	Rate          float64 `json:"target_rate,omitempty"`
	Seconds       float64 `json:"seconds"`
	Requests      int64   `json:"requests"`
	RPS           float64 `json:"rps"`
	P50ms         float64 `json:"p50_ms"`
	P90ms         float64 `json:"p90_ms"`
	P99ms         float64 `json:"p99_ms"`
	P999ms        float64 `json:"p999_ms"`
	MaxMs         float64 `json:"max_ms"`
	Non2xx        int64   `json:"non_2xx"`
	Errors        int64   `json:"errors"`
	Redis         Delta   `json:"redis"`
	CmdsPerReq    float64 `json:"redis_commands_per_request"`
	ScriptsPerReq float64 `json:"redis_scripts_per_request"`
	TripsPerReq   float64 `json:"redis_round_trips_per_request"`
	Ratio         float64 `json:"ratio_to_bare_hop,omitempty"`
	LatencySource string  `json:"latency_series_source,omitempty"`
	Series        []Point `json:"series,omitempty"`
	Skipped       string  `json:"skipped,omitempty"`
	// CPUProfile is the gateway's CPU profile taken during the scenario,
	// when its operations listener serves /debug/pprof.
	CPUProfile string `json:"cpu_profile,omitempty"`
	// Gateway counts what the gateway itself reported during the scenario.
	Gateway *gatewayCounters `json:"gateway,omitempty"`
	// CPU is what each process used during the measured interval.
	CPU *CPU `json:"cpu_seconds,omitempty"`
	// Churn is what the config churn did, in the churn scenario.
	Churn *ChurnResult `json:"churn,omitempty"`
	// GatewayMemory is the gateway process's memory after the scenario.
	GatewayMemory *Memory `json:"gateway_memory,omitempty"`
	// Stream is what a streaming scenario measured.
	Stream *StreamResult `json:"stream,omitempty"`
	// Warning says why the figures may not measure what the scenario means.
	Warning string `json:"warning,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *run) scenario(ctx context.Context, s scenario) *Result {
	res := &Result{Name: s.name, Desc: s.desc, URL: s.url, Concurrency: r.opt.Concurrency, Rate: s.rate}
	useWrk := r.wrk != "" && s.rate == 0
	res.Generator = "go"
	if useWrk {
		res.Generator = "wrk"
	}
	skip := func(err error) *Result {
		res.Skipped = err.Error()
		fmt.Fprintf(r.out, "%-26s skipped: %s\n", s.name, res.Skipped)
		return res
	}
	if s.gateway && r.gwErr != nil {
		return skip(fmt.Errorf("no gateway: %w", r.gwErr))
	}
	if s.node != nil {
		err := r.startNode(ctx, s.node)
		defer s.node.stop()
		if err != nil {
			return skip(err)
		}
		r.active = s.node
		defer func() { r.active = r.gw }()
	}
	if err := r.check(ctx, s); err != nil {
		return skip(err)
	}
	if s.stream != "" {
		return r.streamScenario(ctx, s, res)
	}
	load := Load{URL: s.url, Headers: s.headers, Concurrency: r.opt.Concurrency, Rate: s.rate, MaxRequests: r.opt.MaxRequests}
	if s.tls {
		load.TLS = r.certs.clientConfig()
	}
	fmt.Fprintf(r.out, "%-26s %s\n", s.name, s.desc)
	// The churn runs through the warm-up and the measured time.
	stopChurn := func() *ChurnResult { return nil }
	if s.churn {
		stopChurn = r.startChurn(ctx)
	}
	defer func() {
		if s.churn && res.Churn == nil {
			stopChurn()
		}
	}()
	if r.opt.Warmup > 0 {
		w := load
		w.Duration = r.opt.Warmup
		if useWrk {
			w.Duration = max(w.Duration, time.Second)
			if _, err := RunWrk(ctx, r.wrk, r.opt.OutDir, r.opt.Threads, w); err != nil {
				return skip(err)
			}
		} else {
			_ = Generate(ctx, w, NewRecorder(time.Now(), w.Duration))
		}
	}
	var gwBefore gatewayCounters
	if s.gateway {
		gwBefore = r.gatewayMetrics()
	}
	before, err := ReadStats(ctx, r.rdb)
	if err != nil {
		return skip(err)
	}
	cpuBefore := r.cpuNow()
	load.Duration = r.opt.Duration
	start := time.Now()
	rec := NewRecorder(start, load.Duration)
	stopProgress := r.progress(s.name, load.Duration)
	stopProfile := func() string { return "" }
	if s.profile {
		stopProfile = r.profile(ctx, s.name, load.Duration)
	}
	var extra int64 // probe requests, which Redis also saw
	var wrkCPU float64
	if useWrk {
		var wg sync.WaitGroup
		pctx, cancel := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			probe := load
			probe.Concurrency, probe.Rate = 1, probeRate
			_ = Generate(pctx, probe, rec)
		}()
		wr, err := RunWrk(ctx, r.wrk, r.opt.OutDir, r.opt.Threads, load)
		cancel()
		wg.Wait()
		if err != nil {
			stopProgress()
			return skip(err)
		}
		res.Seconds = float64(wr.DurationUS) / 1e6
		wrkCPU = wr.CPU
		res.Requests = wr.Requests
		res.Non2xx, res.Errors = wr.Status, wr.Errors()
		res.P50ms, res.P90ms, res.P99ms = float64(wr.P50)/1e3, float64(wr.P90)/1e3, float64(wr.P99)/1e3
		res.P999ms, res.MaxMs = float64(wr.P999)/1e3, float64(wr.Max)/1e3
		res.LatencySource = fmt.Sprintf("probe at %d req/s beside wrk", probeRate)
		ok, non, errs := rec.Counts()
		extra = ok + non + errs
	} else {
		_ = Generate(ctx, load, rec)
		res.Seconds = time.Since(start).Seconds()
		ok, non, errs := rec.Counts()
		res.Requests, res.Non2xx, res.Errors = ok+non+errs, non, errs
		h := rec.Total()
		res.P50ms, res.P90ms, res.P99ms = ms(h.Quantile(.5)), ms(h.Quantile(.9)), ms(h.Quantile(.99))
		res.P999ms, res.MaxMs = ms(h.Quantile(.999)), ms(h.Max())
		res.LatencySource = "every request"
	}
	if s.churn { // the churn stops with the load
		res.Churn = stopChurn()
	}
	perSecond := stopProgress()
	res.CPUProfile = stopProfile()
	cpu := r.cpuNow().sub(cpuBefore)
	cpu.Wrk = wrkCPU
	res.CPU = &cpu
	after, err := ReadStats(ctx, r.rdb)
	if err != nil {
		return skip(err)
	}
	res.Redis = after.Sub(before)
	if s.gateway {
		res.GatewayMemory = r.gatewayMemory()
		g := r.gatewayMetrics().sub(gwBefore)
		res.Gateway = &g
		if g.Fallback > 0 || g.StoreErrors > 0 {
			res.Warning = fmt.Sprintf("the gateway decided %.0f of %.0f limit checks with its fallback limiter after %.0f store errors (see %s): the Redis path was not measured",
				g.Fallback, g.Decisions, g.StoreErrors, filepath.Join(r.opt.OutDir, r.active.name+".log"))
			fmt.Fprintf(r.out, "  WARNING: %s\n", res.Warning)
		}
	}
	if res.Churn != nil {
		r.checkApplied(ctx, res.Churn)
		r.checkChurn(res)
	}
	if res.Seconds > 0 {
		res.RPS = float64(res.Requests) / res.Seconds
	}
	if n := res.Requests + extra; n > 0 {
		res.CmdsPerReq = float64(res.Redis.Commands) / float64(n)
		res.ScriptsPerReq = float64(res.Redis.Scripts) / float64(n)
		res.TripsPerReq = float64(res.Redis.RoundTrips) / float64(n)
	}
	for i, rps := range perSecond {
		p := Point{Second: i + 1, RPS: rps}
		if i < rec.Seconds() {
			h := rec.Second(i)
			p.P50ms, p.P99ms = ms(h.Quantile(.5)), ms(h.Quantile(.99))
		}
		res.Series = append(res.Series, p)
	}
	return res
}

// progress prints one line per second with the requests the upstream
// served, until the returned function is called; that returns the
// per-second rates.
func (r *run) progress(name string, d time.Duration) func() []float64 {
	done := make(chan struct{})
	var mu sync.Mutex
	var rates []float64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, _ := r.upstreamCount()
		lastAt := time.Now()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			case now := <-t.C:
				n, err := r.upstreamCount()
				if err != nil {
					n = last // counted in the next second
				}
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				mu.Lock()
				rates = append(rates, rate)
				mu.Unlock()
				fmt.Fprintf(r.out, "  %-26s %3ds/%ds %9.0f req/s\n", name, i, int(d/time.Second), rate)
			}
		}
	}()
	return func() []float64 {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return rates
	}
}

// profile fetches a CPU profile of the gateway for most of d from its
// operations listener, when it serves /debug/pprof (otherwise nothing).
// The returned function waits for it and returns the file written, or "".
func (r *run) profile(ctx context.Context, name string, d time.Duration) func() string {
	secs := max(1, int((d-time.Second)/time.Second))
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", r.active.opsURL, secs)
	path := filepath.Join(r.opt.OutDir, name+".cpu.pprof")
	done := make(chan string, 1)
	go func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		err := fasthttp.DoTimeout(req, resp, time.Duration(secs+10)*time.Second)
		if err != nil || resp.StatusCode() != fasthttp.StatusOK || os.WriteFile(path, resp.Body(), 0o644) != nil {
			done <- ""
			return
		}
		done <- path
	}()
	return func() string {
		select {
		case p := <-done:
			return p
		case <-ctx.Done():
			return ""
		}
	}
}

// checkChurn warns when the churn did not make its changes or the gateway
// did not apply them all.
func (r *run) checkChurn(res *Result) {
	c := res.Churn
	var warn []string
	if c.Errors > 0 {
		warn = append(warn, fmt.Sprintf("%d of %d config changes failed (last: %s)", c.Errors, c.Errors+c.Changes, c.LastError))
	}
	if c.Achieved < 0.9*c.Rate {
		warn = append(warn, fmt.Sprintf("the churn made %.0f changes/s, not %.0f", c.Achieved, c.Rate))
	}
	if c.CatchUpMs < 0 {
		warn = append(warn, fmt.Sprintf("the gateway reports config version %d, the store is at %d: it did not apply every change", c.NodeAfter, c.StoreAfter))
	}
	if len(warn) > 0 {
		res.Warning = strings.Join(append([]string{res.Warning}, warn...), "; ")
		res.Warning = strings.TrimPrefix(res.Warning, "; ")
		fmt.Fprintf(r.out, "  WARNING: %s\n", res.Warning)
	}
	fmt.Fprintf(r.out, "  churn: %d changes (%.1f/s), store version %d -> %d, gateway %d -> %d, caught up %.0f ms after the last\n",
		c.Changes, c.Achieved, c.StoreBefore, c.StoreAfter, c.NodeBefore, c.NodeAfter, c.CatchUpMs)
}
