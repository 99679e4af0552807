// Package bench is the load-test harness behind `make bench`: it starts
// Redis, NATS, an upstream, a bare proxy hop and gateway nodes on loopback,
// drives each scenario with wrk or a built-in generator, and reports
// throughput, latency, Redis commands per request and the ratio of each
// scenario to the bare proxy hop.
package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram buckets: values below subBuckets*2 nanoseconds each have their
// own bucket; above, every power of two is split into subBuckets buckets, so
// a recorded value is off by less than 1/subBuckets (under 1.6%).
const (
	subBuckets = 64
	numBuckets = 2*subBuckets + 57*subBuckets // up to 2^64 ns
)

// Histogram counts latencies in log-linear buckets. Record is safe for
// concurrent use and does not allocate.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 7 // v>>e is in [subBuckets, 2*subBuckets)
	i := 2*subBuckets + (e-1)*subBuckets + int(v>>e) - subBuckets
	return min(i, numBuckets-1)
}

// lowerBound is the smallest value of bucket i.
func lowerBound(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	e := (i-2*subBuckets)/subBuckets + 1
	m := uint64((i-2*subBuckets)%subBuckets + subBuckets)
	return m << e
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// Quantile returns the value at quantile q (0..1): the midpoint of the
// bucket holding it, capped at Max. Zero when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo := lowerBound(i)
			hi := lo + 1
			if i+1 < numBuckets {
				hi = lowerBound(i + 1)
			}
			return min(time.Duration((lo+hi)/2), h.Max())
		}
	}
	return h.Max()
}
