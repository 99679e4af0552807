package rollup

import "time"

// Status is the count of responses by status class.
type Status struct {
	S2xx int64 `json:"2xx"`
	S3xx int64 `json:"3xx"`
	S4xx int64 `json:"4xx"`
	S5xx int64 `json:"5xx"`
}

// Point is one bucket as the query API and the rollup messages show it.
// Errors are responses with a 5xx status; limited are requests a rate
// limit or quota refused; units the sum of the events' units (the cost
// counted against limits counting units, 0 for requests counted as
// requests).
type Point struct {
	T        time.Time `json:"t"`
	Requests int64     `json:"requests"`
	Status   Status    `json:"status"`
	Errors   int64     `json:"errors"`
	Limited  int64     `json:"limited"`
	BytesIn  int64     `json:"bytes_in"`
	BytesOut int64     `json:"bytes_out"`
	Units    int64     `json:"units"`
	P50      float64   `json:"p50_ms"`
	P95      float64   `json:"p95_ms"`
	P99      float64   `json:"p99_ms"`
}

// PointOf renders counters as a Point at t.
func PointOf(t time.Time, c *Counters) Point {
	return Point{
		T: t.UTC(), Requests: c[FRequests],
		Status:  Status{S2xx: c[F2xx], S3xx: c[F3xx], S4xx: c[F4xx], S5xx: c[F5xx]},
		Errors:  c[F5xx],
		Limited: c[FLimited], BytesIn: c[FBytesIn], BytesOut: c[FBytesOut], Units: c[FUnits],
		P50: round3(c.Quantile(0.50)), P95: round3(c.Quantile(0.95)), P99: round3(c.Quantile(0.99)),
	}
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// Rollup is the message published on sluice.rollup.<api-id> when a minute
// closes (see docs/usage-events.md).
type Rollup struct {
	Version   int     `json:"v"`
	API       string  `json:"api"`
	Minute    int64   `json:"minute_ms"` // start of the minute, Unix ms
	LatencyUS int64   `json:"latency_sum_us"`
	Bounds    []int64 `json:"latency_bounds_us"`
	Histogram []int64 `json:"latency_histogram"` // len(Bounds)+1 counts, the last above the last bound
	Point
}

// RollupOf builds the rollup message of a closed minute.
func RollupOf(api string, minute int64, c *Counters) Rollup {
	return Rollup{
		Version: 1, API: api, Minute: minute, LatencyUS: c[FLatencySum],
		Bounds: LatencyBounds[:], Histogram: append([]int64(nil), c[FHist:]...),
		Point: PointOf(time.UnixMilli(minute), c),
	}
}

// Cutoff is the last closed minute at now: a minute m (Unix ms) is closed
// once m + 1 minute + grace <= now.
func Cutoff(now time.Time, grace time.Duration) int64 {
	return MinuteOf(now.Add(-grace - time.Minute).UnixNano())
}
