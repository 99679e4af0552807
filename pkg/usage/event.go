// Package usage is the encoding of usage events, a public, versioned
// contract described in docs/usage-events.md.
//
// A NATS message on sluice.usage.<api-id> carries one batch: events of that
// API, one JSON object per line (NDJSON). Headers:
//
//	Sluice-Usage-Version: 1
//	Nats-Msg-Id: <node>-<boot>-<seq>   unique per batch; JetStream drops duplicates
//
// A publisher retries a batch as a unit: the same events, in the same order,
// under the same Nats-Msg-Id. Consumers may rely on it to deduplicate whole
// batches.
package usage

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Version is the current encoding version.
const Version = "1"

// Header names.
const (
	HeaderVersion = "Sluice-Usage-Version"
	HeaderMsgID   = "Nats-Msg-Id"
)

// Event is one request served (or refused) by a gateway node.
type Event struct {
	ID      string `json:"id"`   // unique per event
	Time    int64  `json:"ts"`   // request start, Unix nanoseconds
	Node    string `json:"node"` // gateway node id
	API     string `json:"api"`  // API id ("" when no API matched)
	KeyHash string `json:"key"`  // SHA-256 hex of the key or identity; "" when keyless
	// KeyID and KeyAlias name the key record that authenticated the
	// request (model.Key.ID and Alias; KeyID "jwt" for a token identity);
	// optional: encoded only when set. Never the key itself.
	KeyID    string `json:"key_id,omitempty"`
	KeyAlias string `json:"key_alias,omitempty"`
	Method   string `json:"method"`   // HTTP method
	Path     string `json:"path"`     // request path, without query
	Endpoint string `json:"endpoint"` // matched endpoint pattern, "" if none
	Status   int    `json:"status"`   // HTTP status sent to the client
	// Latency is the microseconds from the request read to its response
	// ready to send (the gateway's and the upstream's time; the write to the
	// client is not in it); for a streamed response, until its headers were
	// ready to send.
	Latency  int64  `json:"lat_us"`
	BytesIn  int64  `json:"in"`      // request body bytes
	BytesOut int64  `json:"out"`     // response body bytes
	Limited  string `json:"limited"` // "" or why it was refused: "rate", "quota"
	// Duration is the microseconds from the request read to the last
	// response byte written, set (non-zero) only for streamed responses and upgraded
	// connections, whose Latency is the time to the first byte.
	Duration int64 `json:"dur_us,omitempty"`
	// RequestID is the request's id (the X-Request-ID the client sent or
	// the gateway made); optional: encoded only when set.
	RequestID string `json:"rid,omitempty"`
	// Units is the cost the request counted against a limit that counts
	// units (docs/limits.md); 0 (and left out of the JSON) otherwise.
	Units int64 `json:"units,omitempty"`
}

// Timestamp returns the event time.
func (e *Event) Timestamp() time.Time { return time.Unix(0, e.Time) }

// AppendJSON appends e as one JSON line (with trailing newline) to dst.
func AppendJSON(dst []byte, e *Event) []byte { return AppendJSONWith(dst, e, e.ID, e.Node) }

// AppendJSONWith appends e as AppendJSON does, with id and node in place of
// e.ID and e.Node (a publisher filling them in without changing *e).
func AppendJSONWith(dst []byte, e *Event, id, node string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.Time, 10)
	dst = append(dst, `,"node":`...)
	dst = appendString(dst, node)
	dst = append(dst, `,"api":`...)
	dst = appendString(dst, e.API)
	dst = append(dst, `,"key":`...)
	dst = appendString(dst, e.KeyHash)
	if e.KeyID != "" {
		dst = append(dst, `,"key_id":`...)
		dst = appendString(dst, e.KeyID)
	}
	if e.KeyAlias != "" {
		dst = append(dst, `,"key_alias":`...)
		dst = appendString(dst, e.KeyAlias)
	}
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, e.Method)
	dst = append(dst, `,"path":`...)
	dst = appendString(dst, e.Path)
	dst = append(dst, `,"endpoint":`...)
	dst = appendString(dst, e.Endpoint)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = append(dst, `,"lat_us":`...)
	dst = strconv.AppendInt(dst, e.Latency, 10)
	dst = append(dst, `,"in":`...)
	dst = strconv.AppendInt(dst, e.BytesIn, 10)
	dst = append(dst, `,"out":`...)
	dst = strconv.AppendInt(dst, e.BytesOut, 10)
	dst = append(dst, `,"limited":`...)
	dst = appendString(dst, e.Limited)
	if e.Duration != 0 {
		dst = append(dst, `,"dur_us":`...)
		dst = strconv.AppendInt(dst, e.Duration, 10)
	}
	if e.RequestID != "" {
		dst = append(dst, `,"rid":`...)
		dst = appendString(dst, e.RequestID)
	}
	if e.Units != 0 {
		dst = append(dst, `,"units":`...)
		dst = strconv.AppendInt(dst, e.Units, 10)
	}
	return append(dst, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
