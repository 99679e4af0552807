package jwtauth

import (
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/model"
)

// tokenSource says where a request carries its token.
type tokenSource struct {
	header string // "Authorization" by default
	cookie string
}

func newTokenSource(s model.TokenSource) tokenSource {
	if s.Cookie != "" {
		return tokenSource{cookie: s.Cookie}
	}
	if s.Header != "" {
		return tokenSource{header: s.Header}
	}
	return tokenSource{header: fasthttp.HeaderAuthorization}
}

// Token returns the request's token, or nil when it carries none: the
// configured cookie, or the configured header (default Authorization),
// where a "Bearer " prefix (any case) is removed; the Authorization header
// must carry it. The slice points into h: use it before the handler
// returns. It does not allocate.
func (v *Verifier) Token(h *fasthttp.RequestHeader) []byte {
	if v.source.cookie != "" {
		return h.Cookie(v.source.cookie)
	}
	val := h.Peek(v.source.header)
	if tok, ok := cutBearer(val); ok {
		return tok
	}
	if v.source.header == fasthttp.HeaderAuthorization {
		return nil
	}
	return trimSpace(val)
}

// cutBearer removes a case-insensitive "Bearer " prefix and surrounding
// spaces.
func cutBearer(v []byte) ([]byte, bool) {
	const prefix = "bearer "
	if len(v) < len(prefix) {
		return nil, false
	}
	for i := 0; i < len(prefix); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return nil, false
		}
	}
	return trimSpace(v[len(prefix):]), true
}

func trimSpace(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if len(v) == 0 {
		return nil
	}
	return v
}

// StripForwarded removes the incoming headers that forwarded claims use,
// so a caller cannot pose as someone else upstream. Call it on every
// request of the API, token or not.
func (v *Verifier) StripForwarded(h *fasthttp.RequestHeader) {
	for _, f := range v.forward {
		h.Del(f.header)
	}
}

// SetForwarded sets the headers carrying r's claims upstream.
func (v *Verifier) SetForwarded(h *fasthttp.RequestHeader, r *Result) {
	for _, f := range r.Forward {
		h.Set(f.Name, f.Value)
	}
}

// LooksLikeJWT reports whether v has the shape of a compact JWS: three
// base64url parts separated by two dots, the header starting with "eyJ"
// (the encoding of `{"`). An API that accepts an API key or a JWT uses it to
// tell a bearer token from a key; it does not allocate.
func LooksLikeJWT(v []byte) bool {
	if len(v) < 5 || v[0] != 'e' || v[1] != 'y' || v[2] != 'J' {
		return false
	}
	dots := 0
	for _, c := range v {
		switch {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}
