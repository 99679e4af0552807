package usage

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sample() Event {
	return Event{
		ID: "n1-abc-1", Time: 1764237600123456789, Node: "n1", API: "orders",
		KeyHash: strings.Repeat("ab", 32), Method: "POST", Path: "/orders/42/pay",
		Endpoint: "/orders/{id}/pay", Status: 429, Latency: 1250, BytesIn: 17, BytesOut: 64,
		Limited: "rate", RequestID: "0f3a9c1d-17",
	}
}

func TestAppendJSONRoundTrip(t *testing.T) {
	t.Parallel()
	tests := map[string]Event{
		"full":      sample(),
		"empty":     {ID: "x"},
		"stream":    {ID: "s", Status: 200, Latency: 900, BytesOut: 1 << 30, Duration: 2_500_000},
		"escapes":   {ID: "q\"\\\n\t\x01", Path: "/ü/\xff/<script>", RequestID: "a\"b"},
		"key names": {ID: "k", KeyHash: "ab", KeyID: "k-1", KeyAlias: "Ünïcode \"partner\"", Units: 1500},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			line := AppendJSON(nil, &e)
			if !json.Valid(line) {
				t.Fatalf("invalid JSON: %s", line)
			}
			var got Event
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatal(err)
			}
			want := e
			want.Path = strings.ToValidUTF8(want.Path, "\ufffd")
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestRequestIDOptional: rid is written only when set, so a version 1
// decoder that predates it reads the same line as before, and a line
// without it decodes to an empty RequestID.
func TestRequestIDOptional(t *testing.T) {
	t.Parallel()
	e := sample()
	e.RequestID = ""
	line := AppendJSON(nil, &e)
	if strings.Contains(string(line), `"rid"`) {
		t.Fatalf("rid written while empty: %s", line)
	}
	e.RequestID = "r-1"
	if line := AppendJSON(nil, &e); !strings.HasSuffix(string(line), `,"rid":"r-1"}`+"\n") {
		t.Fatalf("rid missing: %s", line)
	}
}

// TestKeyNamesOptional: key_id and key_alias are written only when set,
// so lines of keyless requests are as before.
func TestKeyNamesOptional(t *testing.T) {
	t.Parallel()
	e := Event{ID: "x"}
	if line := string(AppendJSON(nil, &e)); strings.Contains(line, "key_id") || strings.Contains(line, "key_alias") {
		t.Fatalf("key names written while empty: %s", line)
	}
	e.KeyID, e.KeyAlias = "k-1", "acme"
	if line := string(AppendJSON(nil, &e)); !strings.Contains(line, `"key_id":"k-1","key_alias":"acme"`) {
		t.Fatalf("key names missing: %s", line)
	}
}

func TestDecodeBatch(t *testing.T) {
	t.Parallel()
	a, b := sample(), sample()
	b.ID = "n1-abc-2"
	batch := AppendJSON(AppendJSON(nil, &a), &b)
	var ids []string
	if err := DecodeBatch(batch, func(e *Event) error { ids = append(ids, e.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"n1-abc-1", "n1-abc-2"}) {
		t.Fatalf("ids = %v", ids)
	}
	bad := append(batch, []byte("{\"id\":\n")...)
	err := DecodeBatch(bad, func(*Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("malformed line 3: err = %v", err)
	}
	if err := DecodeBatch([]byte(`{"ts":1}`), func(*Event) error { return nil }); err == nil {
		t.Fatal("event without id accepted")
	}
	stop := errors.New("stop")
	if err := DecodeBatch(batch, func(*Event) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error not returned: %v", err)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	e := sample()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &e)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	e := sample()
	f.Add(AppendJSON(nil, &e))
	f.Add([]byte("{\"id\":\"a\"}\n\n{\"id\":\"b\",\"status\":\"x\"}"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = DecodeBatch(data, func(e *Event) error {
			line := AppendJSON(nil, e)
			if !json.Valid(line) {
				t.Fatalf("re-encoded event is not JSON: %q", line)
			}
			return nil
		})
	})
}

// An event without a duration encodes exactly as before the field existed.
func TestAppendJSONOmitsZeroDuration(t *testing.T) {
	t.Parallel()
	e := sample()
	if line := string(AppendJSON(nil, &e)); strings.Contains(line, "dur_us") {
		t.Fatalf("dur_us written for a zero duration: %s", line)
	}
	e.Duration, e.RequestID = 7, ""
	if line := string(AppendJSON(nil, &e)); !strings.HasSuffix(line, `"limited":"rate","dur_us":7}`+"\n") {
		t.Fatalf("dur_us not appended after the fields before it: %s", line)
	}
}
