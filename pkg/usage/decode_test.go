package usage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// referenceDecode is the definition ScanBatch must match: every non-blank
// line decoded by encoding/json into an Event, each with an id.
func referenceDecode(data []byte) ([]Event, error) {
	var out []Event
	for i, l := range bytes.Split(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(l, &e); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if e.ID == "" {
			return nil, fmt.Errorf("line %d: no id", i+1)
		}
		out = append(out, e)
	}
	return out, nil
}

func sampleBatch() []byte {
	var b []byte
	for i, st := range []int{200, 404, 429, 503} {
		e := sample()
		e.ID, e.Status = fmt.Sprintf("n1-b1-%d", i), st
		e.Limited = ""
		if st == 429 {
			e.Limited = "rate"
		}
		if st == 200 {
			e.KeyID, e.KeyAlias, e.Units, e.Duration = "key-1", "acme", 1500, 99
		}
		b = AppendJSON(b, &e)
	}
	return b
}

// FuzzScanBatch checks that the fast decoder accepts and rejects exactly
// what the reference (encoding/json, line by line) does, with the same
// values; DecodeBatch, built on it, too. Seeds: testdata/fuzz/FuzzScanBatch.
func FuzzScanBatch(f *testing.F) {
	f.Add(sampleBatch())
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := referenceDecode(data)
		var got []Event
		gerr := ScanBatch(data, func(v *EventView) error { got = append(got, v.Event()); return nil })
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("reference error %v, fast error %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%d events, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		var dec []Event
		if err := DecodeBatch(data, func(e *Event) error { dec = append(dec, *e); return nil }); err != nil || !reflect.DeepEqual(dec, got) {
			t.Fatalf("DecodeBatch: %v, %d events, ScanBatch %d", err, len(dec), len(got))
		}
	})
}

// Lines as gateways write them take the fast path: no allocation but the
// view handed to the callback, once per batch.
func TestScanFastPathAllocatesOncePerBatch(t *testing.T) {
	data := sampleBatch()
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		_ = ScanBatch(data, func(*EventView) error { n++; return nil })
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per batch, want at most 1", allocs)
	}
}

// A line off the fast path (an escape, a float, an unknown key, a key in
// another case) is decoded by encoding/json, with the values it gives.
func TestScanSlowPath(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		line string
		want Event
	}{
		"escape":       {`{"id":"a\"b","path":"/\u00fc"}`, Event{ID: `a"b`, Path: "/ü"}},
		"unknown key":  {`{"id":"x","extra":[1,{"n":2}],"status":200}`, Event{ID: "x", Status: 200}},
		"other case":   {`{"ID":"x","Status":201}`, Event{ID: "x", Status: 201}},
		"null":         {`{"id":"x","limited":null,"units":7}`, Event{ID: "x", Units: 7}},
		"invalid utf8": {"{\"id\":\"x\",\"key\":\"k\xff\"}", Event{ID: "x", KeyHash: "k\uFFFD"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []Event
			if err := DecodeBatch([]byte(tc.line), func(e *Event) error { got = append(got, *e); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func BenchmarkScanBatch(b *testing.B) {
	var data []byte
	for i := 0; i < 100; i++ {
		data = append(data, sampleBatch()...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = ScanBatch(data, func(*EventView) error { return nil })
	}
	b.ReportMetric(float64(b.N)*400/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeBatch(b *testing.B) {
	var data []byte
	for i := 0; i < 100; i++ {
		data = append(data, sampleBatch()...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = DecodeBatch(data, func(*Event) error { return nil })
	}
	b.ReportMetric(float64(b.N)*400/b.Elapsed().Seconds(), "events/s")
}
