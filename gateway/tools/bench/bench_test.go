package bench

import (
	"context"
	"encoding/xml"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
	}{
		{"single", []time.Duration{time.Millisecond}, 0.5, time.Millisecond},
		{"median of 1..100us", seq(100, time.Microsecond), 0.5, 50 * time.Microsecond},
		{"p99 of 1..1000us", seq(1000, time.Microsecond), 0.99, 990 * time.Microsecond},
		{"max caps", []time.Duration{10 * time.Second}, 1, 10 * time.Second},
		{"small exact", []time.Duration{3, 5, 7}, 0.5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			got := h.Quantile(tc.q)
			if diff := float64(got-tc.want) / float64(tc.want); diff > 0.02 || diff < -0.02 {
				t.Errorf("Quantile(%v) = %v, want %v within 2%%", tc.q, got, tc.want)
			}
		})
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
}

func TestBucketBoundsAreMonotonic(t *testing.T) {
	t.Parallel()
	for i := 1; i < numBuckets; i++ {
		if lowerBound(i) <= lowerBound(i-1) {
			t.Fatalf("bucket %d lower bound %d <= bucket %d's %d", i, lowerBound(i), i-1, lowerBound(i-1))
		}
		if b := bucketOf(lowerBound(i)); b != i && lowerBound(i) < 1<<62 {
			t.Fatalf("bucketOf(lowerBound(%d)) = %d", i, b)
		}
	}
}

func seq(n int, unit time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * unit
	}
	return out
}

func TestParseCommandStats(t *testing.T) {
	t.Parallel()
	before := ParseCommandStats("# Commandstats\r\ncmdstat_info:calls=3,usec=1\r\ncmdstat_evalsha:calls=10,usec=5,usec_per_call=0.5\r\n")
	after := ParseCommandStats("# Commandstats\r\ncmdstat_info:calls=9,usec=1\r\ncmdstat_evalsha:calls=25,usec=5\r\ncmdstat_get:calls=4,usec=1\r\n")
	d := after.Sub(before)
	if d.Commands != 19 || d.Scripts != 15 || d.ByName["get"] != 4 || d.ByName["info"] != 0 {
		t.Errorf("delta = %+v", d)
	}
}

func TestParseWrk(t *testing.T) {
	t.Parallel()
	out := "Running 1s test @ http://127.0.0.1:1/\n" +
		`SLUICE_WRK {"requests":100,"duration_us":1000000,"connect":0,"read":1,"write":0,"timeout":2,"status":3,"p50":120,"p90":300,"p99":900,"p999":1500,"max":2000}` + "\n"
	r, err := ParseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 100 || r.Errors() != 3 || r.Status != 3 || r.P99 != 900 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := ParseWrk([]byte("unable to connect\n")); err == nil {
		t.Error("no summary parsed without error")
	}
}

// testServer counts requests and answers 200, or 503 on /fail.
func testServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		n.Add(1)
		if strings.HasSuffix(string(ctx.Path()), "/fail") {
			ctx.SetStatusCode(503)
		}
	}}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + l.Addr().String(), &n
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	base, _ := testServer(t)
	for _, tc := range []struct {
		name     string
		load     Load
		wantOK   int64 // exact when > 0
		wantNon  int64
		minOK    int64
		maxTotal int64
	}{
		{"bounded by max requests", Load{URL: base + "/", Concurrency: 4, Duration: time.Minute, MaxRequests: 200}, 200, 0, 0, 200},
		{"non 2xx counted", Load{URL: base + "/fail", Concurrency: 2, Duration: time.Minute, MaxRequests: 50}, 0, 50, 0, 50},
		{"constant rate", Load{URL: base + "/", Concurrency: 4, Duration: 300 * time.Millisecond, Rate: 200}, 0, 0, 20, 61},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := NewRecorder(time.Now(), tc.load.Duration)
			if err := Generate(context.Background(), tc.load, rec); err != nil {
				t.Fatal(err)
			}
			ok, non, errs := rec.Counts()
			if errs != 0 || non != tc.wantNon || (tc.wantOK > 0 && ok != tc.wantOK) || ok < tc.minOK || ok+non > tc.maxTotal {
				t.Errorf("ok=%d non2xx=%d errors=%d", ok, non, errs)
			}
			if h := rec.Total(); h.Count() != uint64(ok+non) {
				t.Errorf("histogram holds %d values, want %d", h.Count(), ok+non)
			}
		})
	}
}

func TestChartIsWellFormedSVG(t *testing.T) {
	t.Parallel()
	rs := []*Result{
		{Name: "a<b", Series: []Point{{1, 100, 0.1, 0.5}, {2, 120, 0.1, 0.7}}},
		{Name: "skipped", Skipped: "no gateway"},
		{Name: "c", Series: []Point{{1, 50, 0.2, 2}}},
	}
	svg := Chart(rs)
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	lines := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("invalid SVG: %v\n%s", err, svg)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
		}
	}
	if lines != 4 { // two scenarios with data, two panels
		t.Errorf("%d polylines, want 4", lines)
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {1, 1}, {1.1, 2}, {4321, 5000}, {60000, 100000}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseGatewayMetrics(t *testing.T) {
	t.Parallel()
	text := `# HELP sluice_limit_decisions_total Limit decisions.
# TYPE sluice_limit_decisions_total counter
sluice_limit_decisions_total{outcome="allowed",source="fallback"} 120
sluice_limit_decisions_total{outcome="limited",source="fallback"} 3
sluice_limit_decisions_total{outcome="allowed",source="store"} 1e+06
sluice_limit_store_errors_total 7
sluice_other_total 9
`
	c := parseGatewayMetrics([]byte(text))
	if c.Fallback != 123 || c.Decisions != 1_000_123 || c.StoreErrors != 7 {
		t.Errorf("parsed %+v", c)
	}
	if d := c.sub(gatewayCounters{Fallback: 23, Decisions: 123, StoreErrors: 7}); d.Fallback != 100 || d.Decisions != 1_000_000 || d.StoreErrors != 0 {
		t.Errorf("sub = %+v", d)
	}
}

func TestMedianRPS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rps  []float64
		want float64
	}{{nil, 0}, {[]float64{5}, 5}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 100}, 3.5}} {
		var s []Point
		for i, r := range tc.rps {
			s = append(s, Point{Second: i + 1, RPS: r})
		}
		if got := medianRPS(s); got != tc.want {
			t.Errorf("medianRPS(%v) = %v, want %v", tc.rps, got, tc.want)
		}
	}
}

func TestParseProcStatCPU(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line string
		want       float64
	}{
		{"plain", "1234 (sluice-gateway) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0", 3},
		{"name with spaces and parens", "99 (a (b) c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0", 0.1},
		{"truncated", "99 (x) R 1 2", 0},
		{"no name", "garbage", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := parseProcStatCPU([]byte(tc.line)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	busy, steal := parseProcStat([]byte("cpu  100 10 50 1000 5 3 2 40 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if busy != 1.65 || steal != 0.4 {
		t.Errorf("busy %v steal %v, want 1.65 0.4", busy, steal)
	}
	if b, s := parseProcStat([]byte("intr 1 2 3\n")); b != 0 || s != 0 {
		t.Errorf("not a cpu line: %v %v", b, s)
	}
}
