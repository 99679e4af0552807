package model

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/sluicegw/sluice/pkg/validation"
)

// A normalised path is what a gateway routes on after it has normalised a
// request path, so configuration written in any other form could never be
// matched as written, or would be matched by something else:
//
//   - it starts with "/";
//   - it is "/"-separated segments, none empty ("//"), "." or "..";
//   - a segment holds only RFC 3986 unreserved characters (letters, digits,
//     "-", ".", "_", "~"), the sub-delims except ";" ("!", "$", "&", "'",
//     "(", ")", "*", "+", ",", "="), ":" and "@".
//
// Everything else is refused, each with its own message: percent-escapes
// of any kind ("%2e", "%2F", "%41"), a backslash, control characters
// (NUL, CR, LF, TAB, DEL), spaces, non-ASCII bytes, ";", "?", "#", and
// any character outside the set.

// Errors of CheckListenPath: ErrPath for a path that breaks the rule
// above, ErrListenPath for a normalised path that cannot be a listen path.
var (
	ErrPath       = errors.New("not a normalised path")
	ErrListenPath = errors.New("not a valid listen path")
)

// pathChar marks the bytes a segment of a normalised path may hold.
var pathChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~" + "!$&'()*+,=" + ":@" {
		t[c] = true
	}
	return t
}()

// CheckListenPath returns nil when p is a normalised listen path: a
// normalised path (see above). Listen paths are prefixes matched on a "/"
// boundary, so "/orders/" and "/orders" name the same prefix (the clash
// check treats them as one); write the final "/" to say so. Listen paths
// are not patterns, so "*" is refused too.
func CheckListenPath(p string) error {
	if err := checkNormalPath(p); err != nil {
		return err
	}
	if i := strings.IndexByte(p, '*'); i >= 0 {
		return fmt.Errorf("%q is %w: \"*\" at offset %d: a listen path is a plain prefix, not a pattern (put patterns in endpoints)", p, ErrListenPath, i)
	}
	return nil
}

// checkNormalPath checks that p is a normalised path, with or without a
// final "/".
func checkNormalPath(p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%q is %w: must start with \"/\"", p, ErrPath)
	}
	if err := checkChars(p); err != nil {
		return err
	}
	body := strings.TrimSuffix(p[1:], "/")
	if body == "" {
		if len(p) > 1 {
			return fmt.Errorf("%q is %w: empty segment (\"//\")", p, ErrPath)
		}
		return nil
	}
	for _, seg := range strings.Split(body, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%q is %w: empty segment (\"//\")", p, ErrPath)
		case ".", "..":
			return fmt.Errorf("%q is %w: %q segment", p, ErrPath, seg)
		}
	}
	return nil
}

// checkChars refuses the first byte that is neither "/" nor a segment
// character, saying why.
func checkChars(p string) error {
	if i, why := badChar(p); i >= 0 {
		return fmt.Errorf("%q is %w: %q at offset %d: %s", p, ErrPath, p[i:i+1], i, why)
	}
	return nil
}

// badChar returns the offset of the first byte of s that is neither "/"
// nor a segment character and why it is refused, or -1.
func badChar(s string) (int, string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '/' || pathChar[c] {
			continue
		}
		switch {
		case c == '%':
			return i, "percent-escapes are not allowed: write the character itself, or leave it out"
		case c == '\\':
			return i, "a backslash is not allowed (some servers read it as \"/\")"
		case c < 0x20 || c == 0x7f:
			return i, "control characters are not allowed"
		case c == ' ':
			return i, "spaces are not allowed"
		case c >= 0x80:
			return i, "non-ASCII bytes are not allowed"
		case c == ';':
			return i, "\";\" is not allowed (path parameters are read differently by different servers)"
		case c == '?' || c == '#':
			return i, "a query or fragment is not part of a path"
		}
		return i, "allowed are letters, digits, - . _ ~ ! $ & ' ( ) * + , = : @ and /"
	}
	return -1, ""
}

// checkTarget checks an upstream target URL: scheme http or https, a host
// (IP address or host name) with an optional port 1-65535, no credentials,
// no query or fragment, and a path that is empty or normalised (a final
// "/" is optional: the request path is appended to it).
func checkTarget(errs *validation.Errors, field, raw string) {
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] == 0x7f {
			errs.Add(field, "must not contain spaces or control characters, got %q", raw)
			return
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		errs.Add(field, "must be an http:// or https:// URL with a host, got %q", raw)
		return
	}
	if u.User != nil {
		errs.Add(field, "must not carry credentials (user:password@): the gateway would not send them, and they would be stored in clear")
	}
	if err := validation.Host(u.Hostname()); err != nil {
		errs.Add(field, "%v", err)
	}
	if strings.HasSuffix(u.Host, ":") {
		errs.Add(field, "port is empty in %q", raw)
	} else if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			errs.Add(field, "port %s out of range 1-65535", p)
		}
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		errs.Add(field, "must not have a query or fragment, got %q", raw)
	}
	if p := rawPath(raw[len(u.Scheme)+len("://"):]); p != "" {
		if err := checkNormalPath(p); err != nil {
			errs.Add(field, "%v", err)
		}
	}
}

// rawPath is the path of a URL as written, from what follows "scheme://":
// after the authority, before any query or fragment.
func rawPath(rest string) string {
	i := strings.IndexAny(rest, "/?#")
	if i < 0 || rest[i] != '/' {
		return ""
	}
	rest = rest[i:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
