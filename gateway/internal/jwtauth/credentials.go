package jwtauth

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// TokenOnce is Token over every line of the configured header: it returns
// the token, and ambiguous when two lines carry different tokens (then the
// token is nil). A cookie source reads the first cookie of its name. It
// does not allocate.
func (v *Verifier) TokenOnce(h *fasthttp.RequestHeader) (tok []byte, ambiguous bool) {
	if v.source.cookie != "" {
		return h.Cookie(v.source.cookie), false
	}
	auth := v.source.header == fasthttp.HeaderAuthorization
	for _, val := range h.PeekAll(v.source.header) {
		t, ok := cutBearer(val)
		if !ok {
			if auth {
				continue
			}
			t = trimSpace(val)
		}
		switch {
		case len(t) == 0:
		case tok == nil:
			tok = t
		case !bytes.Equal(tok, t):
			return nil, true
		}
	}
	return tok, false
}

// StripToken removes every place the API reads tokens from, so the
// upstream never receives one: the configured header (every line) or
// cookie (every cookie of that name), and the Authorization field when
// any of its lines carries the Bearer scheme.
func (v *Verifier) StripToken(h *fasthttp.RequestHeader) {
	switch {
	case v.source.cookie != "":
		h.DelCookie(v.source.cookie)
	case v.source.header != fasthttp.HeaderAuthorization:
		h.Del(v.source.header)
	}
	for _, val := range h.PeekAll(fasthttp.HeaderAuthorization) {
		if _, ok := cutBearer(val); ok {
			h.Del(fasthttp.HeaderAuthorization)
			return
		}
	}
}
