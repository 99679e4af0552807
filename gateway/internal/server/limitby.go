package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// limit_by: an API or endpoint limit counted per client. The values the
// limit names (client IP, header, claim, key) are hashed together into the
// counter's name (store.LimitByCounter): "<base>:by:<first 16 bytes of
// SHA-256, hex>". The raw
// values never reach Redis. Every distinct client gets its own counter,
// which expires as any rule counter does once its burst is whole again, so
// the number of clients is not bounded by memory anywhere.

// clientAddr is the request's client address, found once per request
// (clientip.Resolver): the peer, or through trusted proxies the address
// their forwarding header names.
func (s *Server) clientAddr(ctx *fasthttp.RequestCtx, x *exchange) netip.Addr {
	if x.clientSet {
		return x.client
	}
	var peer netip.Addr
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer = ta.AddrPort().Addr()
	}
	x.client, x.clientSet = peer.Unmap(), true
	if r := s.opts.ClientIP; r != nil && r.Trusted(x.client) {
		x.client = r.Client(x.client, ctx.Request.Header.PeekAll(r.Header().Name()))
	}
	return x.client
}

// limitByKey returns the counter key of l for this request, base plus the
// hash of its limit_by values, or the error answering a request that lacks
// one (on_missing: refuse).
func (s *Server) limitByKey(ctx *fasthttp.RequestCtx, x *exchange, base string, l *model.Limit) (string, *Error) {
	b := x.byBuf[:0]
	for _, by := range l.LimitBy {
		b = append(b, by...)
		b = append(b, 0)
		var v []byte
		var ok bool
		switch {
		case by == model.LimitByClientIP:
			a := s.clientAddr(ctx, x).As16()
			v, ok = a[:], true
			b = append(b, v...)
		case by == model.LimitByKey:
			if ok = x.sess != nil; ok {
				b = append(b, x.sess.Hash...)
			}
		case len(by) > len(model.LimitByHeader) && by[:len(model.LimitByHeader)] == model.LimitByHeader:
			v = ctx.Request.Header.Peek(by[len(model.LimitByHeader):])
			if ok = len(v) > 0; ok {
				b = append(b, v...)
			}
		default: // claim:<name>
			if x.claims != nil {
				var c string
				if c, ok = x.claims.Claim(by[len(model.LimitByClaim):]); ok {
					b = append(b, c...)
				}
			}
		}
		if !ok {
			if l.OnMissing != model.OnMissingShared {
				x.byBuf = b
				return "", missingError(by)
			}
			b = append(b, 1) // the shared "missing" bucket of this value
		}
		b = strconv.AppendInt(append(b, 0), int64(len(b)), 10) // framing: no two value lists hash alike
	}
	sum := sha256.Sum256(b)
	var h [32]byte
	hex.Encode(h[:], sum[:16])
	x.byBuf = b
	return store.LimitByCounter(base, h[:]), nil
}

// missingError answers a request without a value its limit counts by.
func missingError(by string) *Error {
	what := by
	switch {
	case by == model.LimitByKey:
		what = "an API key or token"
	case len(by) > len(model.LimitByHeader) && by[:len(model.LimitByHeader)] == model.LimitByHeader:
		what = "header " + strconv.Quote(by[len(model.LimitByHeader):])
	case len(by) > len(model.LimitByClaim) && by[:len(model.LimitByClaim)] == model.LimitByClaim:
		what = "token claim " + strconv.Quote(by[len(model.LimitByClaim):])
	}
	return newError(fasthttp.StatusBadRequest, "limit_by_missing",
		"this API counts its rate limit per "+by+" and the request has no "+what)
}
