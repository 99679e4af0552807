package server

import (
	"errors"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
)

// tokenErrors answers each jwtauth error code: its status, code and
// message, built once.
var tokenErrors = func() map[string]*Error {
	m := map[string]*Error{}
	for _, e := range jwtauth.Errors() {
		m[e.Code] = newError(e.Status, e.Code, e.Message)
	}
	return m
}()

// ErrTokenForbidden is ErrForbidden for a token caller: its policies grant
// no access to the method or path.
var ErrTokenForbidden = newError(fasthttp.StatusForbidden, "forbidden", "the token grants no access to this API, method or path")

const wwwInsufficientScope = `Bearer error="insufficient_scope"`

// authenticateJWT verifies the request's token and takes the session of
// its identity. The headers forwarded claims travel in are removed first,
// token or not, so a caller cannot set them. Two different tokens where
// the API reads one are refused (ambiguous_credentials). The token itself
// is removed once verified (stripCredentials).
func (s *Server) authenticateJWT(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	v := x.api.JWT
	if v == nil {
		s.warnFor(x, errors.New(x.api.ID), "api has jwt auth but no usable verifier (see the config load log)")
		return ErrInternal
	}
	h := &ctx.Request.Header
	v.StripForwarded(h)
	tok, ambiguous := v.TokenOnce(h)
	if ambiguous {
		return ErrAmbiguousCredentials
	}
	return s.verifyToken(ctx, x, tok)
}

// verifyToken checks tok with the API's verifier and, when valid, sets the
// session and keeps the claims forward sets, after hop-by-hop stripping,
// so no Connection option can remove them. A refusal answers with its
// WWW-Authenticate challenge (RFC 6750).
func (s *Server) verifyToken(ctx *fasthttp.RequestCtx, x *exchange, tok []byte) *Error {
	v := x.api.JWT
	res, err := v.Verify(s.base, tok)
	if err != nil {
		var je *jwtauth.Error
		if !errors.As(err, &je) {
			s.warnFor(x, err, "jwt verification failed")
			return ErrInternal
		}
		s.logEvery(&s.lastTokenLog, zerolog.InfoLevel, x.rid, err, "token refused")
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, je.WWWAuthenticate())
		if e := tokenErrors[je.Code]; e != nil {
			return e
		}
		return ErrInternal
	}
	x.sess = s.state.Sessions().Identity(auth.Sum(res.SessionKey), res.Identity, res.Policies)
	x.token = true
	x.claims = res
	return nil
}

// authenticateEither serves an API that accepts an API key or a JWT: the
// first credential present wins, in this order:
//  1. a key in the API's key header or query parameter: the API key;
//  2. a token that looks like a JWT (jwtauth.LooksLikeJWT) where the JWT
//     settings read it (by default "Authorization: Bearer"): the JWT;
//  3. anything else, a bearer value included: the API key.
//
// Two different keys, or two different tokens, are refused
// (ambiguous_credentials); a key and a token are not ambiguous: the order
// above decides. With no credential at all the answer is 401 missing_key,
// with the WWW-Authenticate: Bearer challenge.
func (s *Server) authenticateEither(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	a, v := &x.api.Auth, x.api.JWT
	req := &ctx.Request
	v.StripForwarded(&req.Header)
	key, loc, err := auth.FindKey(req, a.Header, a.QueryParam, jwtauth.LooksLikeJWT)
	tok, ambiguous := v.TokenOnce(&req.Header)
	if err != nil || ambiguous {
		return ErrAmbiguousCredentials
	}
	if loc&(auth.InHeader|auth.InQuery) == 0 && jwtauth.LooksLikeJWT(tok) {
		return s.verifyToken(ctx, x, tok)
	}
	if len(key) == 0 {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, "Bearer")
	}
	return s.authenticateKey(ctx, x, key)
}
