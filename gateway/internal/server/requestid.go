package server

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// DefaultRequestIDHeader names the request id header unless configured.
const DefaultRequestIDHeader = "X-Request-ID"

// MaxRequestIDLength bounds a request id a client sends; a longer one is
// replaced by one the gateway makes.
const MaxRequestIDLength = 128

// requestIDs makes request ids: a random per-process prefix (12 hex digits)
// and a counter, "6f1c2a9e03b4-1a2b". Unique across nodes and restarts with
// overwhelming probability, made without a lock or an allocation.
type requestIDs struct {
	header string
	prefix [12]byte
	n      atomic.Uint64
}

func newRequestIDs(header string) *requestIDs {
	if header == "" {
		header = DefaultRequestIDHeader
	}
	r := &requestIDs{header: header}
	var b [6]byte
	_, _ = rand.Read(b[:])
	hex.Encode(r.prefix[:], b[:])
	return r
}

// next appends a new id to dst.
func (r *requestIDs) next(dst []byte) []byte {
	dst = append(dst, r.prefix[:]...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, r.n.Add(1), 16)
}

// ValidRequestID reports whether v is a request id the gateway passes on:
// 1 to MaxRequestIDLength visible ASCII characters (no space, no control
// character, nothing a log line or a header could be split on).
func ValidRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > MaxRequestIDLength {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// requestID takes the request's id from its header when it is valid, or
// makes one. forward sets it on the request to the upstream (after the
// hop-by-hop strip, so no Connection option removes it) and record on the
// response.
func (s *Server) requestID(ctx *fasthttp.RequestCtx, x *exchange) {
	if v := ctx.Request.Header.Peek(s.rid.header); ValidRequestID(v) {
		x.rid = append(x.rid[:0], v...)
		return
	}
	x.rid = s.rid.next(x.rid[:0])
}
