// Package rollup turns usage events into per-minute counters: the counter
// set of a bucket, its fixed latency histogram, and the in-memory
// aggregation of one fetched batch of messages (decoded by
// usage.ScanBatch).
package rollup

import (
	"strconv"

	"github.com/sluicegw/sluice/pkg/usage"
)

// Field indexes of a Counters set.
const (
	FRequests = iota
	F2xx
	F3xx
	F4xx
	F5xx
	FLimited
	FBytesIn
	FBytesOut
	FUnits      // the cost of requests counted in units (usage event field units)
	FLatencySum // microseconds
	FHist       // first histogram bucket
)

// LatencyBounds are the upper bounds, in microseconds, of the latency
// histogram buckets; a last bucket holds everything above the last bound.
var LatencyBounds = [...]int64{
	100, 200, 300, 500, 750,
	1_000, 1_500, 2_000, 3_000, 5_000, 7_500,
	10_000, 15_000, 20_000, 30_000, 50_000, 75_000,
	100_000, 150_000, 200_000, 300_000, 500_000, 750_000,
	1_000_000, 2_000_000, 5_000_000, 10_000_000,
}

// NumBuckets is the number of histogram buckets (bounds + overflow).
const NumBuckets = len(LatencyBounds) + 1

// NumFields is the size of a Counters set.
const NumFields = FHist + NumBuckets

// Counters is the counter set of one bucket (an API, a key or an endpoint
// in one minute, or a sum of them).
type Counters [NumFields]int64

// Codes are the names of the fields in Redis hashes, streams and rollups.
var Codes = func() [NumFields]string {
	var c [NumFields]string
	copy(c[:], []string{"n", "2xx", "3xx", "4xx", "5xx", "limited", "in", "out", "units", "lat_us"})
	for i := 0; i < NumBuckets; i++ {
		c[FHist+i] = "h" + strconv.Itoa(i)
	}
	return c
}()

// FieldIndex returns the index of a field code, or -1.
func FieldIndex(code string) int {
	for i, c := range Codes {
		if c == code {
			return i
		}
	}
	return -1
}

// bucketOf returns the histogram bucket of a latency in microseconds.
func bucketOf(us int64) int {
	lo, hi := 0, len(LatencyBounds)
	for lo < hi {
		mid := (lo + hi) / 2
		if us <= LatencyBounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Add counts one event.
func (c *Counters) Add(status int, latencyUS, in, out int64, limited bool) {
	c[FRequests]++
	switch {
	case status >= 200 && status < 300:
		c[F2xx]++
	case status >= 300 && status < 400:
		c[F3xx]++
	case status >= 400 && status < 500:
		c[F4xx]++
	case status >= 500 && status < 600:
		c[F5xx]++
	}
	if limited {
		c[FLimited]++
	}
	c[FBytesIn] += in
	c[FBytesOut] += out
	if latencyUS < 0 {
		latencyUS = 0
	}
	c[FLatencySum] += latencyUS
	c[FHist+bucketOf(latencyUS)]++
}

// AddEvent counts one event, its units included.
func (c *Counters) AddEvent(ev *usage.EventView) {
	c.Add(ev.Status, ev.Latency, ev.BytesIn, ev.BytesOut, len(ev.Limited) > 0)
	c[FUnits] += ev.Units
}

// Merge adds o into c.
func (c *Counters) Merge(o *Counters) {
	for i := range c {
		c[i] += o[i]
	}
}

// Quantile estimates the q-quantile (0..1) of latency in milliseconds from
// the histogram, interpolating linearly inside the bucket that holds it.
// It returns 0 when there is no event.
func (c *Counters) Quantile(q float64) float64 {
	var total int64
	for i := 0; i < NumBuckets; i++ {
		total += c[FHist+i]
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen int64
	for i := 0; i < NumBuckets; i++ {
		n := c[FHist+i]
		if n == 0 {
			continue
		}
		if float64(seen+n) >= rank {
			if i == len(LatencyBounds) {
				return float64(LatencyBounds[i-1]) / 1000
			}
			lo := int64(0)
			if i > 0 {
				lo = LatencyBounds[i-1]
			}
			frac := (rank - float64(seen)) / float64(n)
			return (float64(lo) + frac*float64(LatencyBounds[i]-lo)) / 1000
		}
		seen += n
	}
	return float64(LatencyBounds[len(LatencyBounds)-1]) / 1000
}
