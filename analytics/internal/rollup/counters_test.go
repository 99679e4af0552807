package rollup

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lat    []int64
		q      float64
		lo, hi float64 // ms
	}{
		{"empty", nil, 0.5, 0, 0},
		{"all in 1-1.5ms", []int64{1100, 1200, 1300, 1400}, 0.5, 1, 1.5},
		{"p99 in the tail", append(make([]int64, 98), 400_000, 400_000), 0.99, 300, 500},
		{"overflow", []int64{60_000_000}, 0.5, 10_000, 10_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c Counters
			for _, l := range tc.lat {
				c.Add(200, l, 0, 0, false)
			}
			if got := c.Quantile(tc.q); got < tc.lo || got > tc.hi {
				t.Fatalf("q%v = %v, want in [%v, %v]", tc.q, got, tc.lo, tc.hi)
			}
		})
	}
}

func TestMinuteOfAndCutoff(t *testing.T) {
	t.Parallel()
	if got := MinuteOf(-1); got != -MinuteMS {
		t.Fatalf("MinuteOf(-1) = %d", got)
	}
	now := time.UnixMilli(10*MinuteMS + 15_000)
	// minute 9 ends at 10:00; with 10s grace it is closed at 10:10.
	if got := Cutoff(now, 10*time.Second); got != 9*MinuteMS {
		t.Fatalf("Cutoff = %d, want %d", got, 9*MinuteMS)
	}
	if got := Cutoff(now, 20*time.Second); got != 8*MinuteMS {
		t.Fatalf("Cutoff with 20s grace = %d, want %d", got, 8*MinuteMS)
	}
}
