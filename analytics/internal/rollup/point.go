package rollup

import (
	"time"

	"github.com/sluicegw/sluice/pkg/usage"
)

// PointOf renders counters as a point of the query API at t.
func PointOf(t time.Time, c *Counters) usage.Point {
	return usage.Point{T: t.UTC(), Counts: CountsOf(c)}
}

// CountsOf renders counters as the query API shows them.
func CountsOf(c *Counters) usage.Counts {
	return usage.Counts{
		Requests: c[FRequests],
		Status:   usage.Status{S2xx: c[F2xx], S3xx: c[F3xx], S4xx: c[F4xx], S5xx: c[F5xx]},
		Errors:   c[F5xx],
		Limited:  c[FLimited], BytesIn: c[FBytesIn], BytesOut: c[FBytesOut], Units: c[FUnits],
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
	usage.Point
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
