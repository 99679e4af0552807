package auth

import (
	"bytes"
	"crypto/sha256"
	"errors"

	"github.com/valyala/fasthttp"
)

// DefaultHeader carries the API key when an API names no header.
const DefaultHeader = "X-API-Key"

// ErrAmbiguous: a request presents two different credentials of one kind
// (two API keys, or two tokens), in one place or in several. The gateway
// refuses it rather than pick one.
var ErrAmbiguous = errors.New("auth: the request presents two different credentials")

// Location is a set of the places a key was found in.
type Location uint8

// Key locations, combined with |.
const (
	InNone   Location = 0
	InBearer Location = 1 << iota
	InHeader
	InQuery
)

var bearer = []byte("bearer ")

// found gathers the candidates of one credential: the first is the
// credential; any different one makes the request ambiguous.
type found struct {
	key       []byte
	loc       Location
	ambiguous bool
}

func (f *found) add(v []byte, loc Location) {
	if v = bytes.TrimSpace(v); len(v) == 0 {
		return
	}
	switch {
	case f.key == nil:
		f.key = v
	case !bytes.Equal(f.key, v):
		f.ambiguous = true
	}
	f.loc |= loc
}

// FindKey returns the API key of req and the places it was found in: every
// "Authorization: Bearer <key>" line (unless notKey reports the value is
// no key, as a JWT is not for an API that takes either), every line of the
// header (DefaultHeader when empty) and, when query is set, every query
// parameter that reads as query (see SameParam). Every place that holds a
// key must hold the same one: two different keys return ErrAmbiguous. The
// returned slice points into req: use it before the handler returns. It
// does not allocate.
func FindKey(req *fasthttp.Request, header, query string, notKey func([]byte) bool) ([]byte, Location, error) {
	var f found
	for _, v := range req.Header.PeekAll(fasthttp.HeaderAuthorization) {
		if k, ok := cutBearer(v); ok && (notKey == nil || !notKey(k)) {
			f.add(k, InBearer)
		}
	}
	f.addNamed(req, header, query)
	if f.ambiguous {
		return nil, InNone, ErrAmbiguous
	}
	return f.key, f.loc, nil
}

func (f *found) addNamed(req *fasthttp.Request, header, query string) {
	if header == "" {
		header = DefaultHeader
	}
	for _, v := range req.Header.PeekAll(header) {
		f.add(v, InHeader)
	}
	if query == "" {
		return
	}
	for k, v := range req.URI().QueryArgs().All() {
		if SameParam(k, query) {
			f.add(v, InQuery)
		}
	}
}

// cutBearer returns the value of an "Authorization: Bearer" line (the
// scheme in any case).
func cutBearer(v []byte) ([]byte, bool) {
	if len(v) < len(bearer) || !asciiPrefixFold(v, bearer) {
		return nil, false
	}
	return v[len(bearer):], true
}

// StripKeys removes from req every place an API key API reads keys, so the
// upstream never sees one, whichever was used: every line of the header
// (DefaultHeader when empty), the Authorization field when any of its
// lines has the Bearer scheme (another scheme alone, which the gateway
// does not read, is the upstream's), and, when query is set, every query
// parameter that reads as query (SameParam). Removing a query parameter
// re-encodes the query string from its parsed form.
func StripKeys(req *fasthttp.Request, header, query string) {
	if header == "" {
		header = DefaultHeader
	}
	req.Header.Del(header)
	StripBearer(&req.Header)
	if query != "" {
		stripParam(req.URI().QueryArgs(), query)
	}
}

// StripBearer removes the Authorization field when any of its lines
// carries the Bearer scheme.
func StripBearer(h *fasthttp.RequestHeader) {
	for _, v := range h.PeekAll(fasthttp.HeaderAuthorization) {
		if _, ok := cutBearer(v); ok {
			h.Del(fasthttp.HeaderAuthorization)
			return
		}
	}
}

// StripParam deletes every query argument that reads as name (as FindKey
// reads them): what a log may keep of a query that could carry a key.
func StripParam(args *fasthttp.Args, name string) { stripParam(args, name) }

// stripParam deletes every argument that reads as name, a batch of
// distinct decoded names at a time (arguments cannot be deleted while they
// are visited).
func stripParam(args *fasthttp.Args, name string) {
	for {
		var del [8][]byte
		n := 0
		for k := range args.All() {
			if n == len(del) {
				break
			}
			if SameParam(k, name) && !containsExact(del[:n], k) {
				del[n] = k
				n++
			}
		}
		for _, k := range del[:n] {
			args.DelBytes(k)
		}
		if n < len(del) {
			return
		}
	}
}

func containsExact(list [][]byte, s []byte) bool {
	for _, l := range list {
		if bytes.Equal(l, s) {
			return true
		}
	}
	return false
}

// SameParam reports whether the decoded query parameter name got reads as
// want in common upstream frameworks: ASCII case ignored (ASP.NET), '.'
// and ' ' read as '_', leading spaces and a trailing "[...]" ignored (PHP).
// Percent-encoding and '+' are decoded before (fasthttp, like Go's
// net/url, decodes names).
func SameParam(got []byte, want string) bool {
	for len(got) > 0 && got[0] == ' ' {
		got = got[1:]
	}
	if i := bytes.IndexByte(got, '['); i > 0 {
		got = got[:i]
	}
	if len(got) != len(want) {
		return false
	}
	for i := 0; i < len(got); i++ {
		if foldParam(got[i]) != foldParam(want[i]) {
			return false
		}
	}
	return true
}

func foldParam(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	case c == '.' || c == ' ':
		return '_'
	}
	return c
}

func asciiPrefixFold(s, lowerPrefix []byte) bool {
	for i, c := range lowerPrefix {
		b := s[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b != c {
			return false
		}
	}
	return true
}

// Sum is the SHA-256 of an API key, the form in which the gateway caches
// sessions (model.HashKey is its hex form, the form in which keys are stored).
type Sum [sha256.Size]byte

// SumKey hashes key without allocating.
func SumKey(key []byte) Sum { return sha256.Sum256(key) }
