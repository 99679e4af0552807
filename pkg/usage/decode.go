package usage

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EventView is a usage event as ScanBatch hands it over: the fields of
// Event, strings as byte slices that point into the batch (or into a copy
// for a line off the fast path). They are valid until the callback
// returns; copy what you keep (Event makes a copy).
type EventView struct {
	ID        []byte
	Node      []byte
	API       []byte
	KeyHash   []byte
	KeyID     []byte
	KeyAlias  []byte
	Method    []byte
	Path      []byte
	Endpoint  []byte
	Limited   []byte
	RequestID []byte
	Time      int64 // Unix nanoseconds
	Status    int
	Latency   int64 // microseconds
	BytesIn   int64
	BytesOut  int64
	Duration  int64
	Units     int64
}

// Event returns a copy of the view as an Event.
func (v *EventView) Event() Event {
	return Event{
		ID: string(v.ID), Time: v.Time, Node: string(v.Node), API: string(v.API),
		KeyHash: string(v.KeyHash), KeyID: string(v.KeyID), KeyAlias: string(v.KeyAlias),
		Method: string(v.Method), Path: string(v.Path), Endpoint: string(v.Endpoint),
		Status: v.Status, Latency: v.Latency, BytesIn: v.BytesIn, BytesOut: v.BytesOut,
		Limited: string(v.Limited), Duration: v.Duration, RequestID: string(v.RequestID), Units: v.Units,
	}
}

// DecodeBatch calls fn for every event in an NDJSON batch. It stops at the
// first malformed line, or at an event without an id, and returns an error
// naming the line; an error from fn is returned as it is. It is ScanBatch
// with each event copied into an Event.
func DecodeBatch(data []byte, fn func(*Event) error) error {
	return ScanBatch(data, func(v *EventView) error {
		e := v.Event()
		return fn(&e)
	})
}

// ScanBatch calls fn for every event in an NDJSON batch, without copying:
// the view's slices point into data. It accepts and rejects exactly what
// decoding each non-blank line with encoding/json into an Event does (plus
// the rule that every event has an id), with the same values: a fast path
// reads the lines gateways write (a flat object of the event's keys, plain
// printable ASCII strings without escapes, integers) without allocating,
// and any other line goes through encoding/json. FuzzScanBatch proves the
// two agree.
func ScanBatch(data []byte, fn func(*EventView) error) error {
	var ev EventView
	line := 0
	for len(data) > 0 {
		line++
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i], data[i+1:]
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		ev = EventView{}
		if !parseFast(l, &ev) {
			if err := parseSlow(l, &ev); err != nil {
				return fmt.Errorf("usage batch line %d: %w", line, err)
			}
		}
		if len(ev.ID) == 0 {
			return fmt.Errorf("usage batch line %d: event has no id", line)
		}
		if err := fn(&ev); err != nil {
			return err
		}
	}
	return nil
}

// parseSlow decodes a line with encoding/json: the reference for every
// line the fast path does not take.
func parseSlow(l []byte, ev *EventView) error {
	var e Event
	if err := json.Unmarshal(l, &e); err != nil {
		return err
	}
	*ev = EventView{
		ID: []byte(e.ID), Node: []byte(e.Node), API: []byte(e.API), KeyHash: []byte(e.KeyHash),
		KeyID: []byte(e.KeyID), KeyAlias: []byte(e.KeyAlias), Method: []byte(e.Method), Path: []byte(e.Path),
		Endpoint: []byte(e.Endpoint), Limited: []byte(e.Limited), RequestID: []byte(e.RequestID),
		Time: e.Time, Status: e.Status, Latency: e.Latency, BytesIn: e.BytesIn, BytesOut: e.BytesOut,
		Duration: e.Duration, Units: e.Units,
	}
	return nil
}

// parseFast parses a flat JSON object whose keys are exactly the event's
// keys, whose strings are printable ASCII without escapes and whose numbers
// are plain integers. It returns false for anything else.
func parseFast(l []byte, ev *EventView) bool {
	i := skipWS(l, 0)
	if i >= len(l) || l[i] != '{' {
		return false
	}
	i = skipWS(l, i+1)
	if i < len(l) && l[i] == '}' {
		return skipWS(l, i+1) == len(l)
	}
	for {
		key, j, ok := scanString(l, i)
		if !ok {
			return false
		}
		i = skipWS(l, j)
		if i >= len(l) || l[i] != ':' {
			return false
		}
		i = skipWS(l, i+1)
		if i, ok = parseValue(l, i, key, ev); !ok {
			return false
		}
		i = skipWS(l, i)
		if i >= len(l) {
			return false
		}
		if l[i] == '}' {
			return skipWS(l, i+1) == len(l)
		}
		if l[i] != ',' {
			return false
		}
		i = skipWS(l, i+1)
	}
}

// parseValue reads the value of key at l[i] into ev. An unknown key (or
// one in another case, which encoding/json would match) is not taken.
func parseValue(l []byte, i int, key []byte, ev *EventView) (int, bool) {
	ok := false
	switch string(key) {
	case "id":
		ev.ID, i, ok = scanString(l, i)
	case "node":
		ev.Node, i, ok = scanString(l, i)
	case "api":
		ev.API, i, ok = scanString(l, i)
	case "key":
		ev.KeyHash, i, ok = scanString(l, i)
	case "key_id":
		ev.KeyID, i, ok = scanString(l, i)
	case "key_alias":
		ev.KeyAlias, i, ok = scanString(l, i)
	case "method":
		ev.Method, i, ok = scanString(l, i)
	case "path":
		ev.Path, i, ok = scanString(l, i)
	case "endpoint":
		ev.Endpoint, i, ok = scanString(l, i)
	case "limited":
		ev.Limited, i, ok = scanString(l, i)
	case "rid":
		ev.RequestID, i, ok = scanString(l, i)
	case "ts":
		ev.Time, i, ok = scanInt(l, i)
	case "status":
		var n int64
		n, i, ok = scanInt(l, i)
		ev.Status = int(n)
		ok = ok && int64(ev.Status) == n // encoding/json refuses what int cannot hold
	case "lat_us":
		ev.Latency, i, ok = scanInt(l, i)
	case "in":
		ev.BytesIn, i, ok = scanInt(l, i)
	case "out":
		ev.BytesOut, i, ok = scanInt(l, i)
	case "dur_us":
		ev.Duration, i, ok = scanInt(l, i)
	case "units":
		ev.Units, i, ok = scanInt(l, i)
	}
	return i, ok
}

func skipWS(l []byte, i int) int {
	for i < len(l) && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r' || l[i] == '\n') {
		i++
	}
	return i
}

// scanString reads a JSON string at l[i] made of printable ASCII without
// escapes, returning its content and the index after it.
func scanString(l []byte, i int) ([]byte, int, bool) {
	if i >= len(l) || l[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(l); j++ {
		c := l[j]
		if c == '"' {
			return l[i+1 : j], j + 1, true
		}
		if c < 0x20 || c == '\\' || c >= 0x80 {
			return nil, j, false
		}
	}
	return nil, len(l), false
}

// scanInt reads a JSON integer that fits in int64 (no fraction, exponent or
// leading zeros).
func scanInt(l []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(l) && l[i] == '-' {
		neg = true
		i++
	}
	start := i
	var n uint64
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		if i-start >= 19 {
			return 0, i, false // too long: leave it to encoding/json
		}
		n = n*10 + uint64(l[i]-'0')
		i++
	}
	if i == start || (l[start] == '0' && i-start > 1) {
		return 0, i, false
	}
	if i < len(l) && (l[i] == '.' || l[i] == 'e' || l[i] == 'E') {
		return 0, i, false
	}
	if neg {
		if n > 1<<63 {
			return 0, i, false
		}
		return -int64(n), i, true
	}
	if n > 1<<63-1 {
		return 0, i, false
	}
	return int64(n), i, true
}
