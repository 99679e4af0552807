package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Machine describes where the figures were measured.
type Machine struct {
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model"`
	GoVersion    string `json:"go_version"`
	RedisVersion string `json:"redis_version"`
}

// Target is one of the goals the figures are held against.
type Target struct {
	Name  string  `json:"name"`
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
	// Info marks a figure reported without a goal to meet.
	Info bool   `json:"informational,omitempty"`
	Note string `json:"note"`
}

// Report is a whole run.
type Report struct {
	Started   time.Time `json:"started"`
	Machine   Machine   `json:"machine"`
	Generator string    `json:"generator"`
	Options   struct {
		Duration    string `json:"duration"`
		Warmup      string `json:"warmup"`
		Concurrency int    `json:"concurrency"`
		Threads     int    `json:"wrk_threads"`
	} `json:"options"`
	Results []*Result `json:"results"`
	Targets []Target  `json:"targets"`
	JSON    string    `json:"-"`
	Chart   string    `json:"-"`
}

func newReport(opt Options, generator string, rdb *redis.Client) *Report {
	rep := &Report{Started: time.Now().UTC(), Generator: generator}
	rep.Options.Duration, rep.Options.Warmup = opt.Duration.String(), opt.Warmup.String()
	rep.Options.Concurrency, rep.Options.Threads = opt.Concurrency, opt.Threads
	rep.Machine = Machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
				rep.Machine.RedisVersion = v
			}
		}
	}
	return rep
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func (rep *Report) add(r *Result) { rep.Results = append(rep.Results, r) }

func (rep *Report) find(name string) *Result {
	for _, r := range rep.Results {
		if r.Name == name && r.Skipped == "" {
			return r
		}
	}
	return nil
}

// finish computes the ratios to the bare hop and checks the targets.
func (rep *Report) finish() {
	bare := rep.find(ScenBareHop)
	if bare != nil && bare.RPS > 0 {
		for _, r := range rep.Results {
			if r.Skipped == "" && r.Rate == 0 && r.Stream == nil {
				r.Ratio = r.RPS / bare.RPS
			}
		}
	}
	rep.gatewayTargets(ScenFull, ScenFullHalf, ScenBareHopHalf, 0.80)
	rep.gatewayTargets(ScenFullLease, ScenLeaseHalf, ScenBareHopHalfLease, 0.90)
	rep.memoryTarget()
	rep.streamFigures()
	rep.relative(ScenBareHopTLS, ScenBareHop, 0, "the bare hop over HTTPS against the bare hop over HTTP")
	rep.relative(ScenHTTPS, ScenBareHopTLS, 0, "gateway-full over HTTPS against the bare hop over HTTPS")
	rep.relative(ScenHTTPS, ScenFull, 0, "gateway-full over HTTPS against gateway-full over HTTP")
	rep.relative(ScenRedisTLS, ScenFull, 0, "gateway-full with Redis over TLS against over plain TCP")
	rep.relative(ScenAccessLog, ScenFull, 0.90, "gateway-full logging every request to a file against without")
	rep.relative(ScenIP, ScenFull, 0, "a keyless API limited per client IP against gateway-full")
	rep.relative(ScenCost, ScenFull, 0, "a cost limit (reserve, settle) against gateway-full's request limit")
	full := rep.find(ScenFull)
	if full == nil || full.RPS <= 0 {
		return
	}
	if c := rep.find(ScenChurn); c != nil {
		ratio := c.RPS / full.RPS
		note := fmt.Sprintf("%s %.0f req/s vs %s %.0f req/s", ScenChurn, c.RPS, ScenFull, full.RPS)
		if mc, mf := medianRPS(c.Series), medianRPS(full.Series); mc > 0 && mf > 0 {
			note += fmt.Sprintf(" (median second %.0f vs %.0f: %.3f)", mc, mf, mc/mf)
		}
		if c.Churn != nil {
			note += fmt.Sprintf("; %d changes at %.1f/s, gateway config version %d -> %d (store %d)",
				c.Churn.Changes, c.Churn.Achieved, c.Churn.NodeBefore, c.Churn.NodeAfter, c.Churn.StoreAfter)
		}
		applied := c.Churn != nil && c.Churn.CatchUpMs >= 0 && c.Churn.Errors == 0
		if !applied {
			note += "; the gateway did not apply every change"
		}
		rep.Targets = append(rep.Targets, Target{
			Name: "throughput under config churn", Goal: ">= 0.95 of gateway-full, every change applied",
			Value: ratio, Unit: "x", Met: ratio >= 0.95 && applied, Note: note,
		})
	}
	for _, name := range []string{ScenJWTRS256, ScenJWTES256} {
		if j := rep.find(name); j != nil {
			rep.Targets = append(rep.Targets, Target{
				Name: name + " throughput", Goal: "reported: ratio to gateway-full (API key)",
				Value: j.RPS / full.RPS, Unit: "x", Met: true, Info: true,
				Note: fmt.Sprintf("%s %.0f req/s vs %s %.0f req/s, p99 %.3f vs %.3f ms", name, j.RPS, ScenFull, full.RPS, j.P99ms, full.P99ms),
			})
		}
	}
}

// gatewayTargets checks the three targets of one gateway scenario:
// throughput against the bare hop (at least goal), Redis round trips per
// request, and the added p99 latency of its half-peak run over the bare
// hop's at that rate.
func (rep *Report) gatewayTargets(name, halfName, hopHalfName string, goal float64) {
	bare, g := rep.find(ScenBareHop), rep.find(name)
	if g != nil && bare != nil {
		rep.Targets = append(rep.Targets, Target{
			Name: name + " throughput", Goal: fmt.Sprintf(">= %.2f of the bare proxy hop", goal), Value: g.Ratio, Unit: "x",
			Met:  g.Ratio >= goal,
			Note: fmt.Sprintf("%s %.0f req/s vs %s %.0f req/s", name, g.RPS, ScenBareHop, bare.RPS),
		})
	}
	if g != nil {
		rep.Targets = append(rep.Targets, Target{
			Name: name + " redis round trips", Goal: "<= 1.0 per request", Value: g.TripsPerReq, Unit: "trips/req",
			Met:  g.TripsPerReq <= 1.0 && g.ScriptsPerReq <= 1.0,
			Note: fmt.Sprintf("%.3f script calls per request; %.3f commands per request counting those scripts run inside Redis", g.ScriptsPerReq, g.CmdsPerReq),
		})
	}
	if gh, bh := rep.find(halfName), rep.find(hopHalfName); gh != nil && bh != nil {
		added := gh.P99ms - bh.P99ms
		rep.Targets = append(rep.Targets, Target{
			Name: name + " p99 added at half peak", Goal: "< 1 ms over the bare hop", Value: added, Unit: "ms",
			Met:  added < 1,
			Note: fmt.Sprintf("p99 %.3f ms vs %.3f ms at %.0f req/s", gh.P99ms, bh.P99ms, gh.Rate),
		})
	}
}

// relative reports scenario name's throughput as a ratio of base's in the
// run: a target when goal > 0, a figure without a goal otherwise.
func (rep *Report) relative(name, base string, goal float64, what string) {
	r, b := rep.find(name), rep.find(base)
	if r == nil || b == nil || b.RPS <= 0 {
		return
	}
	t := Target{Name: name + " vs " + base, Value: r.RPS / b.RPS, Unit: "x", Met: true, Info: goal <= 0,
		Goal: "reported: " + what,
		Note: fmt.Sprintf("%.0f vs %.0f req/s, p99 %.3f vs %.3f ms; %.3f vs %.3f Redis round trips and %.3f vs %.3f script calls per request",
			r.RPS, b.RPS, r.P99ms, b.P99ms, r.TripsPerReq, b.TripsPerReq, r.ScriptsPerReq, b.ScriptsPerReq)}
	if goal > 0 {
		t.Goal, t.Met = fmt.Sprintf(">= %.2f: %s", goal, what), t.Value >= goal
	}
	rep.Targets = append(rep.Targets, t)
}

// rssGoalMiB is the gateway's resident memory goal under gateway-full.
const rssGoalMiB = 50

// memoryTarget holds the gateway's memory after gateway-full to its goal.
func (rep *Report) memoryTarget() {
	r := rep.find(ScenFull)
	if r == nil || r.GatewayMemory == nil {
		return
	}
	m := r.GatewayMemory
	rep.Targets = append(rep.Targets, Target{
		Name: ScenFull + " gateway RSS", Goal: fmt.Sprintf("<= %d MiB", rssGoalMiB), Value: m.RSSMiB, Unit: "MiB",
		Met:  m.RSSMiB <= rssGoalMiB,
		Note: fmt.Sprintf("resident after the scenario; peak since the node started %.1f MiB", m.PeakMiB),
	})
}

// streamFigures computes the streaming scenarios' ratios to their bare hop
// and reports TTFB, throughput and event latency against it.
func (rep *Report) streamFigures() {
	if g, h := rep.find(ScenStream), rep.find(ScenStreamHop); g != nil && h != nil && g.Stream != nil && h.Stream != nil && h.Stream.MiBps > 0 {
		g.Stream.Ratio = g.Stream.MiBps / h.Stream.MiBps
		rep.Targets = append(rep.Targets, Target{
			Name: ScenStream + " throughput", Goal: "reported: MiB/s against the streaming bare hop",
			Value: g.Stream.Ratio, Unit: "x", Met: true, Info: true,
			Note: fmt.Sprintf("%.0f vs %.0f MiB/s; time to first byte p50 %.3f vs %.3f ms, p99 %.3f vs %.3f ms",
				g.Stream.MiBps, h.Stream.MiBps, g.Stream.TTFBp50ms, h.Stream.TTFBp50ms, g.Stream.TTFBp99ms, h.Stream.TTFBp99ms),
		})
	}
	if g, h := rep.find(ScenSSE), rep.find(ScenSSEHop); g != nil && h != nil && g.Stream != nil && h.Stream != nil {
		rep.Targets = append(rep.Targets, Target{
			Name: ScenSSE + " event latency added", Goal: "reported: p99 event latency over the streaming bare hop's",
			Value: g.Stream.EventP99ms - h.Stream.EventP99ms, Unit: "ms", Met: true, Info: true,
			Note: fmt.Sprintf("event latency p50 %.3f vs %.3f ms, p99 %.3f vs %.3f ms; first event p50 %.3f vs %.3f ms",
				g.Stream.EventP50ms, h.Stream.EventP50ms, g.Stream.EventP99ms, h.Stream.EventP99ms, g.Stream.TTFBp50ms, h.Stream.TTFBp50ms),
		})
	}
}

func (rep *Report) write(dir string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	rep.JSON = filepath.Join(dir, "results.json")
	if err := os.WriteFile(rep.JSON, append(b, '\n'), 0o644); err != nil {
		return err
	}
	rep.Chart = filepath.Join(dir, "latency.svg")
	return os.WriteFile(rep.Chart, Chart(rep.Results), 0o644)
}

// WriteTable prints the results and the targets.
func (rep *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\nSluice benchmark: %d CPUs (%s), %s, Redis %s, generator %s, %d connections, %s per scenario\n\n",
		rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion, rep.Machine.RedisVersion,
		rep.Generator, rep.Options.Concurrency, rep.Options.Duration)
	row := "%-26s %-4s %8s %7s %7s %7s %6s %9s %11s %11s %8s\n"
	fmt.Fprintf(w, row, "scenario", "gen", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "trips/req", "scripts/req", "redis cmd/req", "vs bare")
	for _, r := range rep.Results {
		if r.Skipped != "" {
			fmt.Fprintf(w, row, r.Name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "skipped")
			continue
		}
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		fmt.Fprintf(w, row, r.Name, r.Generator, fmt.Sprintf("%.0f", r.RPS), fmt.Sprintf("%.3f", r.P50ms),
			fmt.Sprintf("%.3f", r.P99ms), fmt.Sprint(r.Non2xx), fmt.Sprint(r.Errors),
			fmt.Sprintf("%.3f", r.TripsPerReq), fmt.Sprintf("%.3f", r.ScriptsPerReq), fmt.Sprintf("%.3f", r.CmdsPerReq), ratio)
	}
	for _, r := range rep.Results {
		if r.Skipped != "" {
			fmt.Fprintf(w, "  %s skipped: %s\n", r.Name, r.Skipped)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\nTargets:")
		for _, t := range rep.Targets {
			verdict := "MET"
			switch {
			case t.Info:
				verdict = "INFO"
			case !t.Met:
				verdict = "MISSED"
			}
			fmt.Fprintf(w, "  %-6s %-44s %8.3f %-9s goal %s\n         %s\n", verdict, t.Name, t.Value, t.Unit, t.Goal, t.Note)
		}
	}
	writeStreams(w, rep.Results)
	writeMemory(w, rep.Results)
	writeCPU(w, rep.Results)
	fmt.Fprintln(w, "\ntrips/req: Redis client read events per request (round trips); scripts/req: EVALSHA/EVAL calls;\n"+
		"redis cmd/req: INFO commandstats calls, including the commands scripts run inside Redis.")
	for _, r := range rep.Results {
		if r.Warning != "" {
			fmt.Fprintf(w, "  WARNING %s: %s\n", r.Name, r.Warning)
		}
	}
	for _, r := range rep.Results {
		if r.CPUProfile != "" {
			fmt.Fprintf(w, "Gateway CPU profile during %s: go tool pprof -top %s\n", r.Name, r.CPUProfile)
		}
	}
	if rep.JSON != "" {
		fmt.Fprintf(w, "\nResults: %s\nChart:   %s\n", rep.JSON, rep.Chart)
	}
}

// writeStreams prints the streaming scenarios' own figures.
func writeStreams(w io.Writer, results []*Result) {
	row := "%-26s %8s %8s %9s %9s %9s %9s %8s\n"
	header := false
	for _, r := range results {
		if r.Skipped != "" || r.Stream == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nStreams (TTFB: to the first byte, or the first event of an SSE stream):")
			fmt.Fprintf(w, row, "scenario", "streams", "MiB/s", "TTFB p50", "TTFB p99", "event p50", "event p99", "vs hop")
			header = true
		}
		st, ratio, ev50, ev99 := r.Stream, "-", "-", "-"
		if st.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", st.Ratio)
		}
		if st.Kind == streamSSE {
			ev50, ev99 = fmt.Sprintf("%.3f", st.EventP50ms), fmt.Sprintf("%.3f", st.EventP99ms)
		}
		fmt.Fprintf(w, row, r.Name, fmt.Sprint(r.Requests), fmt.Sprintf("%.1f", st.MiBps),
			fmt.Sprintf("%.3f", st.TTFBp50ms), fmt.Sprintf("%.3f", st.TTFBp99ms), ev50, ev99, ratio)
	}
}

// writeMemory prints the gateway's memory after each gateway scenario.
func writeMemory(w io.Writer, results []*Result) {
	header := false
	for _, r := range results {
		if r.Skipped != "" || r.GatewayMemory == nil {
			continue
		}
		if !header {
			fmt.Fprintln(w, "\nGateway memory after each scenario (MiB; peak: since its node started):")
			fmt.Fprintf(w, "%-26s %8s %8s\n", "scenario", "RSS", "peak")
			header = true
		}
		fmt.Fprintf(w, "%-26s %8.1f %8.1f\n", r.Name, r.GatewayMemory.RSSMiB, r.GatewayMemory.PeakMiB)
	}
}

// medianRPS is the median of a scenario's per-second throughput, less
// swayed than the mean by a second other work on the machine took.
func medianRPS(series []Point) float64 {
	v := make([]float64, 0, len(series))
	for _, p := range series {
		v = append(v, p.RPS)
	}
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
