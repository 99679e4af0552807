package rollup

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sluicegw/sluice/pkg/usage"
)

// Event holds the fields of a usage event that aggregation needs. The byte
// slices point into the message (or into a fallback copy); they are valid
// until the next event is decoded.
type Event struct {
	ID       []byte
	Key      []byte
	KeyID    []byte
	KeyAlias []byte
	Endpoint []byte
	Limited  bool
	Time     int64 // Unix nanoseconds
	Status   int64
	Latency  int64 // microseconds
	BytesIn  int64
	BytesOut int64
	Units    int64
}

// DecodeBatch calls fn for every event of an NDJSON batch. It accepts and
// rejects exactly what usage.DecodeBatch does: a fast path reads the lines
// the gateway writes (flat objects, plain strings and integers) without
// allocating, and any other line goes through encoding/json.
func DecodeBatch(data []byte, fn func(*Event)) error {
	var ev Event
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
		ev = Event{}
		if !parseFast(l, &ev) {
			if err := parseSlow(l, &ev); err != nil {
				return fmt.Errorf("usage batch line %d: %w", line, err)
			}
		}
		if len(ev.ID) == 0 {
			return fmt.Errorf("usage batch line %d: event has no id", line)
		}
		fn(&ev)
	}
	return nil
}

func parseSlow(l []byte, ev *Event) error {
	var e usage.Event
	if err := json.Unmarshal(l, &e); err != nil {
		return err
	}
	*ev = Event{
		ID: []byte(e.ID), Key: []byte(e.KeyHash), Endpoint: []byte(e.Endpoint),
		KeyID: []byte(e.KeyID), KeyAlias: []byte(e.KeyAlias),
		Limited: e.Limited != "", Time: e.Time, Status: int64(e.Status),
		Latency: e.Latency, BytesIn: e.BytesIn, BytesOut: e.BytesOut, Units: e.Units,
	}
	return nil
}

// parseFast parses a flat JSON object whose keys are exactly the event's
// keys, whose strings are printable ASCII without escapes and whose numbers
// are plain integers. It returns false for anything else.
func parseFast(l []byte, ev *Event) bool {
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

func parseValue(l []byte, i int, key []byte, ev *Event) (int, bool) {
	var s []byte
	var n int64
	ok := false
	switch string(key) {
	case "id":
		ev.ID, i, ok = scanString(l, i)
	case "key":
		ev.Key, i, ok = scanString(l, i)
	case "endpoint":
		ev.Endpoint, i, ok = scanString(l, i)
	case "key_id":
		ev.KeyID, i, ok = scanString(l, i)
	case "key_alias":
		ev.KeyAlias, i, ok = scanString(l, i)
	case "node", "api", "method", "path", "rid":
		_, i, ok = scanString(l, i)
	case "limited":
		s, i, ok = scanString(l, i)
		ev.Limited = len(s) > 0
	case "ts":
		ev.Time, i, ok = scanInt(l, i)
	case "status":
		n, i, ok = scanInt(l, i)
		ev.Status = n
	case "lat_us":
		ev.Latency, i, ok = scanInt(l, i)
	case "in":
		ev.BytesIn, i, ok = scanInt(l, i)
	case "out":
		ev.BytesOut, i, ok = scanInt(l, i)
	case "units":
		ev.Units, i, ok = scanInt(l, i)
	case "dur_us":
		_, i, ok = scanInt(l, i)
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
