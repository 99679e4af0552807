package model

import (
	"errors"
	"fmt"
	"strings"
)

// Pattern is a compiled path pattern. Grammar, segment by segment:
//
//	/users          a literal segment
//	/users/*        "*" or "{name}" matches exactly one non-empty segment
//	/files/**       a final "**" matches the rest of the path, even nothing
//
// A pattern starts with "/" and follows the rule of a normalised path (see
// CheckListenPath): no empty, "." or ".." segment, and literal segments and
// names of only the characters a normalised path holds ("*" aside), so a
// pattern can match a normalised request path as written. A trailing "/"
// in the path is ignored, so "/users" matches "/users/" too. Matching does
// not allocate.
type Pattern struct {
	raw  string
	segs []string // "*" for one-segment wildcards
	rest bool     // ends with "**"
}

// ErrPatternSyntax is wrapped by every error CompilePattern returns.
var ErrPatternSyntax = errors.New("invalid path pattern")

// CompilePattern parses a path pattern.
func CompilePattern(p string) (*Pattern, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("%w %q: must start with /", ErrPatternSyntax, p)
	}
	cp := &Pattern{raw: p}
	body := strings.TrimSuffix(p[1:], "/")
	if body == "" {
		if len(p) > 1 {
			return nil, fmt.Errorf("%w %q: empty segment", ErrPatternSyntax, p)
		}
		return cp, nil
	}
	parts := strings.Split(body, "/")
	for i, s := range parts {
		switch {
		case s == "":
			return nil, fmt.Errorf("%w %q: empty segment", ErrPatternSyntax, p)
		case s == "." || s == "..":
			return nil, fmt.Errorf("%w %q: %q segment", ErrPatternSyntax, p, s)
		case s == "**":
			if i != len(parts)-1 {
				return nil, fmt.Errorf("%w %q: ** must be the last segment", ErrPatternSyntax, p)
			}
			cp.rest = true
		case s == "*":
			cp.segs = append(cp.segs, "*")
		case len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}' && !strings.ContainsAny(s[1:len(s)-1], "{}*"):
			if j, why := badChar(s[1 : len(s)-1]); j >= 0 {
				return nil, fmt.Errorf("%w %q: wildcard name %q: %q: %s", ErrPatternSyntax, p, s, s[1+j:2+j], why)
			}
			cp.segs = append(cp.segs, "*")
		case strings.ContainsAny(s, "{}*"):
			return nil, fmt.Errorf("%w %q: segment %q mixes literal text and wildcards", ErrPatternSyntax, p, s)
		default:
			if j, why := badChar(s); j >= 0 {
				return nil, fmt.Errorf("%w %q: segment %q: %q: %s", ErrPatternSyntax, p, s, s[j:j+1], why)
			}
			cp.segs = append(cp.segs, s)
		}
	}
	return cp, nil
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.raw }

// Match reports whether path (without query) matches the pattern.
func (p *Pattern) Match(path []byte) bool {
	i := 0
	for _, seg := range p.segs {
		for i < len(path) && path[i] == '/' {
			i++
		}
		if i >= len(path) {
			return false
		}
		j := i
		for j < len(path) && path[j] != '/' {
			j++
		}
		if seg != "*" && seg != string(path[i:j]) {
			return false
		}
		i = j
	}
	if p.rest {
		return true
	}
	for ; i < len(path); i++ {
		if path[i] != '/' {
			return false
		}
	}
	return true
}
