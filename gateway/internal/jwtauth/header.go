package jwtauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// compactJWS is a token split at its dots and decoded, its header checked
// against the rules below; its payload is not parsed until the signature
// verifies.
type compactJWS struct {
	signingInput string // "<header>.<payload>" as received: what was signed
	header       joseHeader
	payload      []byte // the decoded payload (a claims set, once verified)
	signature    []byte
}

// joseHeader is what the gateway reads from a token's JOSE header. Every
// other parameter is ignored, among them jku, x5u, jwk, x5c, x5t and
// x5t#S256: the verification key comes from the API's settings only, never
// from the token, and nothing a token names is ever fetched.
type joseHeader struct {
	alg string // "" when absent or not a string
	kid string // "" when absent
}

// b64url is the token alphabet: base64url without padding, and strict, so
// one byte string has exactly one encoding (no non-zero trailing bits).
var b64url = base64.RawURLEncoding.Strict()

// maxJSONDepth bounds the nesting of a token's header and payload.
const maxJSONDepth = 32

// parseCompact splits a compact JWS (RFC 7515 section 7.1) and applies the
// header rules:
//
//   - exactly three parts, every byte from the base64url alphabet: padding
//     ("="), the standard alphabet ("+", "/"), spaces and line breaks are
//     refused, as are encodings with non-zero trailing bits;
//   - header and payload are UTF-8, and the header one JSON object with
//     every member name once, at every depth;
//   - crit is refused in every form: the gateway understands no extension
//     (RFC 7515 section 4.1.11);
//   - b64 other than true (an unencoded payload, RFC 7797) is refused;
//   - typ, when present, is JWT or at+jwt (RFC 9068), in any case, with or
//     without "application/"; any other type (logout+jwt, secevent+jwt,
//     dpop+jwt, ...) names a token meant for something else (RFC 8725
//     section 3.11);
//   - cty naming JWT (a nested token) is refused;
//   - kid, when present, is a string.
//
// A missing alg is left to the caller, which refuses it as not allowed.
func parseCompact(tok string) (*compactJWS, *Error) {
	first := strings.IndexByte(tok, '.')
	last := strings.LastIndexByte(tok, '.')
	if first < 0 || first == last || strings.Count(tok, ".") != 2 {
		return nil, ErrTokenInvalid.with(errors.New("not three dot-separated parts"))
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c != '.' && !isB64URL(c) {
			return nil, ErrTokenInvalid.with(fmt.Errorf("byte %d is not in the base64url alphabet (no padding, no '+' or '/', no spaces)", i))
		}
	}
	if first == 0 {
		return nil, ErrTokenInvalid.with(errors.New("empty header"))
	}
	t := &compactJWS{signingInput: tok[:last]}
	headerJSON, err := b64url.DecodeString(tok[:first])
	if err != nil {
		return nil, ErrTokenInvalid.with(fmt.Errorf("header is not canonical base64url: %w", err))
	}
	if t.payload, err = b64url.DecodeString(tok[first+1 : last]); err != nil {
		return nil, ErrTokenInvalid.with(fmt.Errorf("payload is not canonical base64url: %w", err))
	}
	if t.signature, err = b64url.DecodeString(tok[last+1:]); err != nil {
		return nil, ErrTokenInvalid.with(fmt.Errorf("signature is not canonical base64url: %w", err))
	}
	if t.header, err = parseHeader(headerJSON); err != nil {
		return nil, ErrTokenInvalid.with(fmt.Errorf("header: %w", err))
	}
	return t, nil
}

func isB64URL(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// registeredHeaders are the header parameters of RFC 7515 and RFC 7518
// (JWS), which crit must never name.
var registeredHeaders = map[string]bool{
	"alg": true, "jku": true, "jwk": true, "kid": true, "x5u": true, "x5c": true,
	"x5t": true, "x5t#S256": true, "typ": true, "cty": true, "crit": true,
}

// parseHeader decodes and checks a JOSE header (see parseCompact).
func parseHeader(data []byte) (joseHeader, error) {
	var h joseHeader
	if err := checkJSONObject(data); err != nil {
		return h, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return h, err
	}
	if c, ok := raw["crit"]; ok {
		return h, critError(c, raw)
	}
	if b, ok := raw["b64"]; ok {
		switch string(b) {
		case "true":
		case "false":
			return h, errors.New("b64 is false: unencoded payloads (RFC 7797) are not accepted")
		default:
			return h, errors.New("b64 is not a boolean")
		}
	}
	if r, ok := raw["typ"]; ok {
		typ, ok := rawString(r)
		if !ok {
			return h, errors.New("typ is not a string")
		}
		if t := mediaType(typ); t != "jwt" && t != "at+jwt" {
			return h, fmt.Errorf("typ %.40q is not a JWT access token type (JWT or at+jwt)", typ)
		}
	}
	if r, ok := raw["cty"]; ok {
		cty, ok := rawString(r)
		if !ok {
			return h, errors.New("cty is not a string")
		}
		if mediaType(cty) == "jwt" {
			return h, errors.New("cty JWT: nested tokens are not accepted")
		}
	}
	if r, ok := raw["kid"]; ok {
		kid, ok := rawString(r)
		if !ok {
			return h, errors.New("kid is not a string")
		}
		h.kid = kid
	}
	h.alg, _ = rawString(raw["alg"])
	return h, nil
}

// critError says why a crit header is refused: the gateway supports no
// extension, so every crit is refused; the message names the first rule of
// RFC 7515 section 4.1.11 it breaks.
func critError(c json.RawMessage, header map[string]json.RawMessage) error {
	var names []json.RawMessage
	if err := json.Unmarshal(c, &names); err != nil || c[0] != '[' {
		return errors.New("crit is not an array")
	}
	if len(names) == 0 {
		return errors.New("crit is empty")
	}
	for _, r := range names {
		name, ok := rawString(r)
		switch {
		case !ok || name == "":
			return errors.New("crit lists a value that is not a parameter name")
		case registeredHeaders[name]:
			return fmt.Errorf("crit lists %q, a parameter of JWS itself", name)
		case header[name] == nil:
			return fmt.Errorf("crit lists %.40q, which the header lacks", name)
		}
	}
	n, _ := rawString(names[0])
	return fmt.Errorf("crit lists the extension %.40q, which the gateway does not support", n)
}

// rawString reads a JSON string; null and other types are not strings.
func rawString(r json.RawMessage) (string, bool) {
	if len(r) == 0 || r[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", false
	}
	return s, true
}

// mediaType lowercases a typ or cty value and removes an "application/"
// prefix (RFC 7515 section 4.1.9).
func mediaType(s string) string {
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "application/")
}

// checkJSONObject reports why data is not one JSON object in UTF-8 whose
// objects, at every depth up to maxJSONDepth, name each member once. A
// duplicate name is refused rather than resolved: two parsers (the
// gateway's and the upstream's) could each pick a different one. Names are
// compared as encoding/json decodes them, so an escaped spelling
// ("\u0061lg") is the same name.
func checkJSONObject(data []byte) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	if !json.Valid(data) { // also: one value, nothing after it
		return errors.New("not JSON, or data after the JSON object")
	}
	if bytes.TrimLeft(data, " \t\r\n")[0] != '{' { // valid JSON is not blank
		return errors.New("not a JSON object")
	}
	return checkNames(data)
}

// jsonLevel is one open object or array while checkNames scans.
type jsonLevel struct {
	object bool
	names  [][]byte            // the object's member names so far
	set    map[string]struct{} // the same, once there are many
}

// manyNames is where a level switches from a list to a set.
const manyNames = 16

// add records a member name (raw: the JSON string with its quotes) and
// reports a duplicate.
func (l *jsonLevel) add(raw []byte) error {
	name := raw[1 : len(raw)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("not JSON: %w", err)
		}
		name = []byte(s)
	}
	if l.set != nil {
		if _, ok := l.set[string(name)]; ok {
			return fmt.Errorf("member %.40q appears twice", name)
		}
		l.set[string(name)] = struct{}{}
		return nil
	}
	for _, n := range l.names {
		if bytes.Equal(n, name) {
			return fmt.Errorf("member %.40q appears twice", name)
		}
	}
	l.names = append(l.names, name)
	if len(l.names) > manyNames {
		l.set = make(map[string]struct{}, 2*manyNames)
		for _, n := range l.names {
			l.set[string(n)] = struct{}{}
		}
	}
	return nil
}

// checkNames scans valid JSON for duplicate member names and nesting
// deeper than maxJSONDepth. It relies on the syntax being valid.
func checkNames(data []byte) error {
	var stack [maxJSONDepth]jsonLevel
	depth := 0
	expectName := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			if depth == maxJSONDepth {
				return fmt.Errorf("nested deeper than %d", maxJSONDepth)
			}
			l := &stack[depth]
			l.object, l.names, l.set = c == '{', l.names[:0], nil
			depth++
			expectName = c == '{'
		case '}', ']':
			depth--
			expectName = false
		case ',':
			expectName = stack[depth-1].object
		case '"':
			end := i + 1
			for data[end] != '"' {
				if data[end] == '\\' {
					end++
				}
				end++
			}
			if expectName {
				if err := stack[depth-1].add(data[i : end+1]); err != nil {
					return err
				}
				expectName = false
			}
			i = end
		}
	}
	return nil
}
