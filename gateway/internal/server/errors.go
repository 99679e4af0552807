package server

import (
	"encoding/json"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/reqpath"
)

// Error is the one error type of the request path: an HTTP status and a
// stable code, answered as {"error":{"code":"...","message":"..."}}. The
// message never carries internals (upstream or store error text): those go
// to the log.
type Error struct {
	Status  int
	Code    string
	Message string
	body    []byte
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, message string) *Error {
	e := &Error{Status: status, Code: code, Message: message}
	var doc struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	doc.Error.Code, doc.Error.Message = code, message
	e.body, _ = json.Marshal(doc)
	return e
}

// The errors the gateway answers. Codes are a public contract.
var (
	ErrBadRequest      = newError(fasthttp.StatusBadRequest, "bad_request", "the request could not be parsed")
	ErrNotFound        = newError(fasthttp.StatusNotFound, "not_found", "no API is served at this host and path")
	ErrMissingKey      = newError(fasthttp.StatusUnauthorized, "missing_key", "an API key is required")
	ErrInvalidKey      = newError(fasthttp.StatusUnauthorized, "invalid_key", "the API key is not valid")
	ErrKeyExpired      = newError(fasthttp.StatusUnauthorized, "key_expired", "the API key has expired")
	ErrKeyDisabled     = newError(fasthttp.StatusUnauthorized, "key_disabled", "the API key is disabled")
	ErrForbidden       = newError(fasthttp.StatusForbidden, "forbidden", "the API key has no access to this API, method or path")
	ErrBodyTooLarge    = newError(fasthttp.StatusRequestEntityTooLarge, "body_too_large", "the request body is too large")
	ErrRateLimited     = newError(fasthttp.StatusTooManyRequests, "rate_limited", "rate limit exceeded")
	ErrQuotaExceeded   = newError(fasthttp.StatusTooManyRequests, "quota_exceeded", "quota exhausted")
	ErrHeaderTooLarge  = newError(fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large", "the request headers are too large")
	ErrTimeout         = newError(fasthttp.StatusRequestTimeout, "request_timeout", "the request was not received in time")
	ErrInternal        = newError(fasthttp.StatusInternalServerError, "internal", "internal error")
	ErrUpstreamDown    = newError(fasthttp.StatusBadGateway, "upstream_unavailable", "the upstream service is unavailable")
	ErrStoreDown       = newError(fasthttp.StatusServiceUnavailable, "store_unavailable", "the gateway cannot reach its store, try again shortly")
	ErrNotReady        = newError(fasthttp.StatusServiceUnavailable, "not_ready", "the gateway has not loaded its configuration yet")
	ErrUpstreamTimeout = newError(fasthttp.StatusGatewayTimeout, "upstream_timeout", "the upstream service did not answer in time")
	ErrBadPath         = newError(fasthttp.StatusBadRequest, "bad_path", "the request path is not acceptable")
	ErrPathLeavesAPI   = newError(fasthttp.StatusBadRequest, "bad_path", "the path reaches its API through a '..' segment leaving another listen path")
)

// pathErrors answers each reason reqpath refuses a path: 400 bad_path,
// with a message naming the reason (docs/edge.md, "Paths").
var pathErrors = func() map[error]*Error {
	m := map[error]*Error{}
	for _, err := range []error{
		reqpath.ErrTarget, reqpath.ErrFragment, reqpath.ErrEscape, reqpath.ErrControl, reqpath.ErrEncodedSlash,
		reqpath.ErrBackslash, reqpath.ErrPathParam, reqpath.ErrDoubleEncoding, reqpath.ErrUTF8,
		reqpath.ErrTrailingDot, reqpath.ErrDotParam, reqpath.ErrAboveRoot,
	} {
		m[err] = newError(fasthttp.StatusBadRequest, "bad_path", err.Error())
	}
	return m
}()

func pathError(err error) *Error {
	if e, ok := pathErrors[err]; ok {
		return e
	}
	return ErrBadPath
}

// writeError answers e: the one place an error becomes a response. The
// response headers set so far (rate-limit headers) are kept.
func writeError(ctx *fasthttp.RequestCtx, e *Error) {
	ctx.Response.ResetBody()
	ctx.Response.SetStatusCode(e.Status)
	ctx.Response.Header.SetContentType("application/json")
	if e.Status == fasthttp.StatusServiceUnavailable && len(ctx.Response.Header.Peek("Retry-After")) == 0 {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	ctx.Response.SetBodyRaw(e.body)
}

// errorHandler answers requests fasthttp could not read: oversized headers
// (431), oversized bodies (413), what the wire guard stopped, ambiguous
// framing and other parse errors (400), read timeouts (408).
func errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var e *Error
	g, _ := ctx.Conn().(interface{ refusal() *Error }) // guardedConn, plain or TLS
	switch {
	case g != nil && g.refusal() != nil:
		e = g.refusal() // the wire guard stopped the request (wire.go)
	case errors.As(err, &small):
		e = ErrHeaderTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = ErrBodyTooLarge
	case isTimeout(err):
		e = ErrTimeout
	default:
		e = ErrBadRequest
	}
	writeError(ctx, e)
	ctx.SetConnectionClose()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
