package limit

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Header names. fasthttp writes them normalized ("Ratelimit-Policy"), as
// Go's net/http does; field names are case-insensitive, and normalized
// names are what Peek and a proxied response's own headers match.
const (
	headerPolicy     = "RateLimit-Policy"
	headerRateLimit  = "RateLimit"
	headerXLimit     = "X-RateLimit-Limit"
	headerXRemaining = "X-RateLimit-Remaining"
	headerXReset     = "X-RateLimit-Reset"
	headerRetryAfter = "Retry-After"
)

// WriteHeaders sets the rate-limit headers of the decision on h:
//
//	RateLimit-Policy: "<policy>";q=<limit>;w=<window seconds>
//	RateLimit: "<policy>";r=<remaining>;t=<seconds until reset>
//	X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (seconds)
//	Retry-After: <seconds> (Limited and Unavailable only)
//
// RateLimit-Policy and RateLimit follow draft-ietf-httpapi-ratelimit-headers
// (structured-field lists of items named by the policy, parameters q, w and
// r, t). Only the most restrictive limit is reported. Seconds are rounded
// up. It does not allocate.
func (d *Decision) WriteHeaders(h *fasthttp.ResponseHeader) {
	if d.HasLimit {
		b := appendItem(d.buf[:0], d.Policy)
		b = append(b, ";q="...)
		b = strconv.AppendInt(b, d.Limit, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, ceilSeconds(d.Window), 10)
		h.SetBytesV(headerPolicy, b)

		b = appendItem(b[:0], d.Policy)
		b = append(b, ";r="...)
		b = strconv.AppendInt(b, d.Remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, ceilSeconds(d.Reset), 10)
		h.SetBytesV(headerRateLimit, b)

		h.SetBytesV(headerXLimit, strconv.AppendInt(b[:0], d.Limit, 10))
		h.SetBytesV(headerXRemaining, strconv.AppendInt(b[:0], d.Remaining, 10))
		h.SetBytesV(headerXReset, strconv.AppendInt(b[:0], ceilSeconds(d.Reset), 10))
	}
	if d.Outcome == Limited || d.Outcome == Unavailable {
		s := ceilSeconds(d.RetryAfter)
		if s < 1 {
			s = 1
		}
		h.SetBytesV(headerRetryAfter, strconv.AppendInt(d.buf[:0], s, 10))
	}
}

// ceilSeconds rounds d up to whole seconds; never negative.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// appendItem appends name as a structured-field string (RFC 8941 sf-string):
// quoted, with '"' and '\' escaped and anything outside printable ASCII
// replaced by '?'. Names longer than 32 bytes are cut so the header fits the
// decision's buffer.
func appendItem(b []byte, name string) []byte {
	if len(name) > 32 {
		name = name[:32]
	}
	b = append(b, '"')
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
