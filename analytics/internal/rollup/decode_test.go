package rollup

import (
	"bytes"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/usage"
)

func sampleBatch() []byte {
	var b []byte
	for i, st := range []int{200, 404, 429, 503} {
		e := usage.Event{ID: "n1-b1-" + string(rune('a'+i)), Time: time.Unix(1700000000, 0).UnixNano(), Node: "n1", API: "orders",
			KeyHash: "abc", Method: "GET", Path: "/o/1", Endpoint: "/o/{id}", Status: st, Latency: 1234, BytesIn: 5, BytesOut: 99}
		if st == 429 {
			e.Limited = "rate"
		}
		if st == 200 {
			e.KeyID, e.KeyAlias, e.Units, e.RequestID, e.Duration = "key-1", "acme", 1500, "r-1", 99
		}
		b = usage.AppendJSON(b, &e)
	}
	return b
}

// FuzzDecodeBatch checks that the fast decoder accepts and rejects exactly
// what the reference decoder in pkg/usage does, with the same values.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(sampleBatch())
	f.Add([]byte(`{"id":"x","status":200}` + "\n\n" + `{"id":"y","ts":-5,"lat_us":1e3}`))
	f.Add([]byte(`{"id":"a\u00e9","key":"k\"q","extra":{"n":[1,2]},"limited":null}`))
	f.Add([]byte(`{"ID":"x","Status":200}`))
	f.Add([]byte(`{"id":"x","units":-3,"key_id":"k","key_alias":"caf\u00e9","dur_us":1.5}`))
	f.Add([]byte(`{"id":"x","units":12345678901234567890}`))
	f.Add([]byte(`{"id":"x","status":9223372036854775808}`))
	f.Add([]byte(`{"id":"x","status":01}`))
	f.Add([]byte(`{"id":"","status":200}`))
	f.Add([]byte(`{"id":"x"} trailing`))
	f.Add([]byte("{\"id\":\"x\",\"path\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want []usage.Event
		werr := usage.DecodeBatch(data, func(e *usage.Event) error { want = append(want, *e); return nil })
		var got []Event
		gerr := DecodeBatch(data, func(e *Event) {
			c := *e
			c.ID, c.Key, c.Endpoint = bytes.Clone(e.ID), bytes.Clone(e.Key), bytes.Clone(e.Endpoint)
			c.KeyID, c.KeyAlias = bytes.Clone(e.KeyID), bytes.Clone(e.KeyAlias)
			got = append(got, c)
		})
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("reference error %v, fast error %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%d events, want %d", len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if string(g.ID) != w.ID || string(g.Key) != w.KeyHash || string(g.Endpoint) != w.Endpoint ||
				g.Limited != (w.Limited != "") || g.Time != w.Time || g.Status != int64(w.Status) ||
				g.Latency != w.Latency || g.BytesIn != w.BytesIn || g.BytesOut != w.BytesOut ||
				string(g.KeyID) != w.KeyID || string(g.KeyAlias) != w.KeyAlias || g.Units != w.Units {
				t.Fatalf("event %d: got %+v, want %+v", i, g, w)
			}
		}
	})
}

func TestDecodeFastPathAllocatesOncePerBatch(t *testing.T) {
	data := sampleBatch()
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		_ = DecodeBatch(data, func(*Event) { n++ })
	})
	if allocs > 1 { // the event handed to the callback escapes, once per batch
		t.Fatalf("%v allocations per batch, want at most 1", allocs)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	var data []byte
	for i := 0; i < 100; i++ {
		data = append(data, sampleBatch()...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = DecodeBatch(data, func(*Event) {})
	}
	b.ReportMetric(float64(b.N)*400/b.Elapsed().Seconds(), "events/s")
}

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
