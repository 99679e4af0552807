package server

import (
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/model"
)

// The errors of the credential and forwarding rules (see docs/edge.md).
// Codes are a public contract.
var (
	ErrAmbiguousCredentials = newError(fasthttp.StatusBadRequest, "ambiguous_credentials", "the request presents two different credentials")
	ErrConnectionOptions    = newError(fasthttp.StatusBadRequest, "bad_request", "the Connection header names too many options")
	ErrForwardedForTooLong  = newError(fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large", "the X-Forwarded-For header is too long")
)

// stripCredentials empties every place api reads a credential from, which
// ever one the request used: for an API key API its key header, its query
// parameter and "Authorization: Bearer"; for JWT settings the token's
// header or cookie and "Authorization: Bearer"; for an API that takes
// either, both.
func stripCredentials(req *fasthttp.Request, api *state.API) {
	a := &api.Auth
	if a.Mode == model.AuthAPIKey {
		auth.StripKeys(req, a.Header, a.QueryParam)
	}
	switch {
	case api.JWT != nil:
		api.JWT.StripToken(&req.Header)
	case a.JWT != nil: // settings without a usable verifier: their places all the same
		if a.JWT.Token.Cookie != "" {
			req.Header.DelCookie(a.JWT.Token.Cookie)
		} else if a.JWT.Token.Header != "" {
			req.Header.Del(a.JWT.Token.Header)
		}
		auth.StripBearer(&req.Header)
	}
}

// checkHeaders refuses, before anything is looked up or counted, a request
// whose headers forward would refuse: too many Connection options (400),
// an X-Forwarded-For list past its bound (431).
func (s *Server) checkHeaders(ctx *fasthttp.RequestCtx) *Error {
	switch proxy.CheckRequest(&ctx.Request, s.opts.Forwarding) {
	case nil:
		return nil
	case proxy.ErrConnectionOptions:
		return ErrConnectionOptions
	default:
		return ErrForwardedForTooLong
	}
}

// forwardHeaders readies the request's headers for the upstream: hop-by-hop
// headers out, then the headers the gateway sets (a token's claims, the
// X-Forwarded-* family), which a Connection option can therefore not
// remove.
func (s *Server) forwardHeaders(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	if proxy.StripRequest(&ctx.Request) != nil {
		return ErrConnectionOptions
	}
	if x.claims != nil && x.api.JWT != nil {
		x.api.JWT.SetForwarded(&ctx.Request.Header, x.claims)
	}
	if proxy.SetForwarded(&ctx.Request, ctx.RemoteAddr(), ctx.IsTLS(), s.opts.Forwarding) != nil {
		return ErrForwardedForTooLong
	}
	ctx.Request.Header.SetBytesV(s.rid.header, x.rid)
	s.traceUpstream(ctx, x)
	return nil
}
