package auth

import (
	"bytes"
	"crypto/sha256"

	"github.com/valyala/fasthttp"
)

// DefaultHeader carries the API key when an API names no header.
const DefaultHeader = "X-API-Key"

// Where a key was found, so the gateway can remove it before proxying.
type Location uint8

// Key locations.
const (
	InNone Location = iota
	InBearer
	InHeader
	InQuery
)

var bearer = []byte("bearer ")

// ExtractKey returns the API key of req and where it was found, looking at
// "Authorization: Bearer <key>", then the header (DefaultHeader when empty),
// then the query parameter query when it is set. The returned slice points
// into req: use it before the handler returns. It does not allocate.
func ExtractKey(req *fasthttp.Request, header, query string) ([]byte, Location) {
	if v := req.Header.Peek(fasthttp.HeaderAuthorization); len(v) > len(bearer) && asciiPrefixFold(v, bearer) {
		if k := bytes.TrimSpace(v[len(bearer):]); len(k) > 0 {
			return k, InBearer
		}
	}
	return ExtractHeaderKey(req, header, query)
}

// ExtractHeaderKey is ExtractKey without "Authorization: Bearer": the key
// from the header (DefaultHeader when empty), then from the query parameter
// query when it is set. An API that accepts an API key or a JWT looks here
// first, so a key in its own place wins over a bearer token.
func ExtractHeaderKey(req *fasthttp.Request, header, query string) ([]byte, Location) {
	if header == "" {
		header = DefaultHeader
	}
	if v := bytes.TrimSpace(req.Header.Peek(header)); len(v) > 0 {
		return v, InHeader
	}
	if query != "" {
		if v := req.URI().QueryArgs().Peek(query); len(v) > 0 {
			return v, InQuery
		}
	}
	return nil, InNone
}

// StripKey removes the key found at loc from req, so the upstream never
// sees it.
func StripKey(req *fasthttp.Request, loc Location, header, query string) {
	switch loc {
	case InBearer:
		req.Header.Del(fasthttp.HeaderAuthorization)
	case InHeader:
		if header == "" {
			header = DefaultHeader
		}
		req.Header.Del(header)
	case InQuery:
		req.URI().QueryArgs().Del(query)
	}
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
