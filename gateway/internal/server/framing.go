package server

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// The framing and parsing guard: the first stage of the request path. It
// refuses, with 400 and the connection closed, every request whose framing
// or header block two HTTP parsers could read differently (RFC 9112
// sections 2.2, 3, 5, 6; docs/edge.md, "Framing and parsing"). fasthttp has
// parsed the request by now and is lenient in places: it joins obs-folded
// lines, takes header names with spaces, any HTTP/d.d version, and
// `Transfer-Encoding: identity` (then reads no body, so a body holding a
// second request would be parsed as the next one). So the guard reads the
// request line fasthttp kept and the exact wire bytes of the header block
// (RequestHeader.RawHeaders), never fasthttp's normalised view of them.
// What only the byte stream shows (bare LF on the request line, chunk
// lines) is guarded by the connection wrapper in wire.go.

// The answers of the guard: one code, bad_request, and a message naming
// the problem.
var (
	errVersion       = newError(fasthttp.StatusBadRequest, "bad_request", "only HTTP/1.1 and HTTP/1.0 are served")
	errLineEnding    = newError(fasthttp.StatusBadRequest, "bad_request", "request lines must end in CRLF")
	errObsFold       = newError(fasthttp.StatusBadRequest, "bad_request", "obsolete line folding is not accepted")
	errHeaderName    = newError(fasthttp.StatusBadRequest, "bad_request", "a header name is not a token")
	errHeaderValue   = newError(fasthttp.StatusBadRequest, "bad_request", "a header value holds a control character")
	errTransferCode  = newError(fasthttp.StatusBadRequest, "bad_request", "Transfer-Encoding must be exactly one chunked")
	errContentLength = newError(fasthttp.StatusBadRequest, "bad_request", "Content-Length must be one sequence of digits, sent once")
	errBothLengths   = newError(fasthttp.StatusBadRequest, "bad_request", "Content-Length and Transfer-Encoding must not be sent together")
	errHost          = newError(fasthttp.StatusBadRequest, "bad_request", "the request needs exactly one Host, matching an absolute request target")
	errChunkLine     = newError(fasthttp.StatusBadRequest, "bad_request", "a chunk size line is malformed or too long")
)

// checkFraming runs the guard; a refused request closes the connection, so
// nothing sent after it on the same connection is ever parsed.
func checkFraming(ctx *fasthttp.RequestCtx) *Error {
	if err := requestFraming(&ctx.Request.Header); err != nil {
		ctx.SetConnectionClose()
		return err
	}
	return nil
}

var (
	http11 = []byte("HTTP/1.1")
	http10 = []byte("HTTP/1.0")
)

// requestFraming checks the request line and the raw header block of h.
func requestFraming(h *fasthttp.RequestHeader) *Error {
	proto := h.Protocol()
	if !bytes.Equal(proto, http11) && !bytes.Equal(proto, http10) {
		return errVersion
	}
	hb, err := scanHeaderBlock(h.RawHeaders())
	if err != nil {
		return err
	}
	switch {
	case hb.contentLength > 0 && hb.transferEncoding > 0:
		return errBothLengths
	case hb.hosts > 1, hb.hosts == 0 && bytes.Equal(proto, http11):
		return errHost
	}
	if auth, ok := absoluteAuthority(h.RequestURI()); ok && !bytes.EqualFold(auth, hb.host) {
		return errHost
	}
	return nil
}

// headerBlock is what the guard learns from the raw header lines.
type headerBlock struct {
	contentLength, transferEncoding, hosts int
	host                                   []byte // a slice of the raw block
}

var (
	nameCL   = []byte("content-length")
	nameTE   = []byte("transfer-encoding")
	nameHost = []byte("host")
	chunked  = []byte("chunked")
)

// scanHeaderBlock checks every raw header line: CRLF endings, no folding, a
// token name directly followed by the colon, no control character but HTAB
// in the value, at most one Content-Length made of digits, at most one
// Transfer-Encoding and that one exactly chunked (RFC 9112 section 6.1: the
// gateway decodes no other coding, and chunked must be the final one).
// An empty raw block (a request with no header at all) passes.
func scanHeaderBlock(raw []byte) (headerBlock, *Error) {
	var hb headerBlock
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 1 || raw[i-1] != '\r' {
			return hb, errLineEnding
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return hb, errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 1 || !isToken(line[:colon]) {
			return hb, errHeaderName
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !isFieldValue(value) {
			return hb, errHeaderValue
		}
		switch {
		case bytes.EqualFold(name, nameCL):
			hb.contentLength++
			if hb.contentLength > 1 || !isDigits(value) {
				return hb, errContentLength
			}
		case bytes.EqualFold(name, nameTE):
			hb.transferEncoding++
			if hb.transferEncoding > 1 || !bytes.EqualFold(value, chunked) {
				return hb, errTransferCode
			}
		case bytes.EqualFold(name, nameHost):
			hb.hosts++
			hb.host = value
		}
	}
	return hb, nil
}

// absoluteAuthority returns the authority of an absolute-form request
// target (RFC 9112 section 3.2.2), and false for any other form.
func absoluteAuthority(target []byte) ([]byte, bool) {
	i := bytes.Index(target, []byte("://"))
	if len(target) == 0 || target[0] == '/' || i < 0 {
		return nil, false
	}
	auth := target[i+3:]
	if j := bytes.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	if j := bytes.LastIndexByte(auth, '@'); j >= 0 {
		auth = auth[j+1:]
	}
	return auth, true
}

// tchar per RFC 9110 section 5.6.2.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

// isFieldValue reports whether b holds no control character but HTAB
// (RFC 9110 section 5.5; obs-text is allowed).
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
