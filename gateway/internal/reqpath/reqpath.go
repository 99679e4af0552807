// Package reqpath parses the path of a request-target once, at the edge,
// into its normal form: the path that routing, access rules and endpoint
// limits judge, and the exact bytes forwarded upstream. Decoding the
// forwarded bytes once gives the judged path, and nothing in it changes
// meaning when decoded a second time. Inputs that could be read two ways
// are refused with a sentinel error naming the problem.
//
// The contract, byte by byte (docs/edge.md, "Paths"):
//
//   - The request-target is origin-form ("/..."), or absolute-form
//     ("http://host/..."), whose path is taken; anything else, and any
//     target with a fragment ('#'), is refused. The query is not part of
//     the path and is forwarded as received.
//   - Percent escapes are decoded once. An escape of an unreserved
//     character (A-Z a-z 0-9 - . _ ~) is forwarded as the character; any
//     other escape is forwarded with upper-case hex ("%3b" becomes "%3B").
//     A literal character outside the path grammar of RFC 3986 (such as
//     '"', '{', '|', or a byte >= 0x80) is forwarded percent-encoded.
//   - Refused: a '%' not followed by two hex digits; control bytes (NUL
//     included), literal or encoded, and literal spaces (an encoded space,
//     %20, is data); an encoded '/' (%2F) or '\' (%5C); a literal '\'; a
//     literal ';' (path parameters); a decoded '%' that starts an escape ("%41",
//     "%u0041") when decoded a second time; decoded bytes that are not
//     valid UTF-8 (overlong forms included); a segment ending in '.' or
//     ' ' other than the dot segments; a segment whose part before a ';'
//     is a dot segment; dot segments that climb above the root.
//   - Runs of '/' are merged into one, then dot segments are resolved
//     once (RFC 3986 section 5.2.4): "/a/./b" is "/a/b", "/a/b/../c" is
//     "/a/c", "/a/.." is "/".
//
// Parse does not allocate once the Path's buffers have grown to the size
// of the paths it sees.
package reqpath

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// The reasons a path is refused. Each names the problem for the client.
var (
	ErrTarget         = errors.New("the request-target is not an absolute path or URL")
	ErrFragment       = errors.New("the request-target has a fragment ('#')")
	ErrEscape         = errors.New("the path has a '%' not followed by two hex digits")
	ErrControl        = errors.New("the path has a control character or a space")
	ErrEncodedSlash   = errors.New("the path has an encoded '/' (%2F)")
	ErrBackslash      = errors.New("the path has a backslash, literal or encoded")
	ErrPathParam      = errors.New("the path has a ';' (path parameters are not accepted)")
	ErrDoubleEncoding = errors.New("the path is encoded twice: decoding it again would change it")
	ErrUTF8           = errors.New("the decoded path is not valid UTF-8")
	ErrTrailingDot    = errors.New("a path segment ends in a dot or a space")
	ErrDotParam       = errors.New("a path segment is a dot segment followed by parameters")
	ErrAboveRoot      = errors.New("the path climbs above the root with '..'")
)

// Path is a request path in normal form. The zero value is ready for
// Parse; a Path is reused from request to request, and the slices it
// returns are valid until the next Parse.
type Path struct {
	decoded []byte
	escaped []byte
	// floor is the shortest length of decoded that a ".." segment left,
	// or -1 when no ".." removed anything.
	floor int
}

// Decoded is the path decoded once: what routing, access rules and
// endpoint limits judge. It starts with '/'; its only '/' bytes are
// segment separators.
func (p *Path) Decoded() []byte { return p.decoded }

// Escaped is the path as forwarded: Decoded encoded so that one decoding
// gives Decoded back. Its '/' bytes are the same separators as Decoded's.
func (p *Path) Escaped() []byte { return p.escaped }

// Within reports whether the first n bytes of Decoded, a prefix ending on
// a segment boundary, were never left by a ".." segment: "/a/b/../c" stays
// within "/a", "/a/../b" does not stay within "/b". n must not exceed
// len(Decoded()).
func (p *Path) Within(n int) bool { return p.floor < 0 || p.floor >= n }

// EscapedRest is the part of Escaped after the first n bytes of Decoded, a
// prefix ending on a segment boundary (n == len(Decoded()) or Decoded()[n]
// == '/'); "/" when nothing follows the prefix.
func (p *Path) EscapedRest(n int) []byte {
	segs := bytes.Count(p.decoded[:n], slash)
	for i, c := range p.escaped {
		if c != '/' {
			continue
		}
		if segs == 0 {
			return p.escaped[i:]
		}
		segs--
	}
	return slash
}

var slash = []byte("/")

// ParseTarget parses the path of a request-target: origin-form ("/a?q") or
// absolute-form ("http://host/a?q", whose path is "/" when empty). The
// query is not part of the path. A fragment never belongs in a
// request-target (RFC 9112 section 3.2): refused, as a parser that does not
// cut it would read another path.
func (p *Path) ParseTarget(target []byte) error {
	if bytes.IndexByte(target, '#') >= 0 {
		p.clear()
		return ErrFragment
	}
	if len(target) == 0 || target[0] != '/' {
		rest, ok := cutScheme(target)
		if !ok {
			p.clear()
			return ErrTarget
		}
		i := bytes.IndexAny(rest, "/?")
		if i < 0 || rest[i] != '/' {
			return p.Parse(slash)
		}
		target = rest[i:]
	}
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return p.Parse(target)
}

// cutScheme returns what follows "http://" or "https://" (any case).
func cutScheme(t []byte) ([]byte, bool) {
	for _, s := range [...]string{"http://", "https://"} {
		if len(t) >= len(s) && bytes.EqualFold(t[:len(s)], []byte(s)) {
			return t[len(s):], true
		}
	}
	return nil, false
}

func (p *Path) clear() {
	p.decoded, p.escaped, p.floor = p.decoded[:0], p.escaped[:0], -1
}

// Parse normalises raw, an absolute path as received (percent-encoded,
// without query), into p. On error p holds no path.
func (p *Path) Parse(raw []byte) error {
	p.clear()
	if len(raw) == 0 || raw[0] != '/' {
		return ErrTarget
	}
	d, e, err := p.parse(p.decoded, p.escaped, raw)
	p.decoded, p.escaped = d, e
	if err != nil {
		p.clear()
	}
	return err
}

// parse appends the normal form of raw to d (decoded) and e (escaped),
// segment by segment, resolving dot segments as they come.
func (p *Path) parse(d, e, raw []byte) ([]byte, []byte, error) {
	for i := 0; ; {
		for i < len(raw) && raw[i] == '/' {
			i++
		}
		if i == len(raw) {
			return append(d, '/'), append(e, '/'), nil
		}
		j := bytes.IndexByte(raw[i:], '/')
		if j < 0 {
			j = len(raw)
		} else {
			j += i
		}
		last := j == len(raw)
		d, e = append(d, '/'), append(e, '/')
		ds, es := len(d), len(e)
		var err error
		var plain bool
		if d, e, plain, err = appendSegment(d, e, raw[i:j]); err != nil {
			return d, e, err
		}
		switch seg := d[ds:]; {
		case isDot(seg):
			if last {
				d, e = d[:ds], e[:es]
			} else {
				d, e = d[:ds-1], e[:es-1]
			}
		case isDotDot(seg):
			d, e = d[:ds-1], e[:es-1]
			if len(d) == 0 {
				return d, e, ErrAboveRoot
			}
			d = d[:bytes.LastIndexByte(d, '/')]
			e = e[:bytes.LastIndexByte(e, '/')]
			if p.floor < 0 || len(d) < p.floor {
				p.floor = len(d)
			}
			if last {
				d, e = append(d, '/'), append(e, '/')
			}
		default:
			if err := checkSegment(seg, plain); err != nil {
				return d, e, err
			}
		}
		if last {
			return d, e, nil
		}
		i = j
	}
}

// appendSegment decodes one raw segment onto d and its forwarded form
// onto e. plain reports a segment of ASCII bytes without escapes.
func appendSegment(d, e, seg []byte) (_, _ []byte, plain bool, err error) {
	plain = true
	for i := 0; i < len(seg); i++ {
		if j := literalRun(seg[i:]); j > 0 {
			d, e = append(d, seg[i:i+j]...), append(e, seg[i:i+j]...)
			if i += j; i == len(seg) {
				break
			}
		}
		c := seg[i]
		if c != '%' {
			switch class[c] {
			case encoded:
				d, e = append(d, c), append(e, '%', hex[c>>4], hex[c&15])
				plain = plain && c < utf8.RuneSelf
			case ctl:
				return d, e, false, ErrControl
			case backslash:
				return d, e, false, ErrBackslash
			case semicolon:
				return d, e, false, ErrPathParam
			}
			continue
		}
		if i+2 >= len(seg) || unhex(seg[i+1]) < 0 || unhex(seg[i+2]) < 0 {
			return d, e, false, ErrEscape
		}
		c = byte(unhex(seg[i+1])<<4 | unhex(seg[i+2]))
		i += 2
		plain = false
		switch {
		case c == '/':
			return d, e, false, ErrEncodedSlash
		case c == '\\':
			return d, e, false, ErrBackslash
		case c < 0x20 || c == 0x7f:
			return d, e, false, ErrControl
		case unreserved(c):
			d, e = append(d, c), append(e, c)
		default:
			d, e = append(d, c), append(e, '%', hex[c>>4], hex[c&15])
		}
	}
	return d, e, plain, nil
}

// literalRun is the length of the run of literal bytes b starts with.
func literalRun(b []byte) int {
	for i, c := range b {
		if class[c] != literal {
			return i
		}
	}
	return len(b)
}

// checkSegment refuses a decoded segment (not a dot segment) that another
// parser could read differently. A plain segment (ASCII, no escapes) holds
// no '%', ';' or byte >= 0x80 once decoded: only its end is checked.
func checkSegment(seg []byte, plain bool) error {
	if last := seg[len(seg)-1]; last == '.' || last == ' ' {
		return ErrTrailingDot
	}
	if plain {
		return nil
	}
	high := false
	for i, c := range seg {
		switch {
		case c >= utf8.RuneSelf:
			high = true
		case c == '%' && escapeAt(seg[i+1:]):
			return ErrDoubleEncoding
		case c == ';' && (isDot(seg[:i]) || isDotDot(seg[:i])):
			return ErrDotParam
		}
	}
	if high && !utf8.Valid(seg) {
		return ErrUTF8
	}
	return nil
}

// escapeAt reports whether b, what follows a decoded '%', would be decoded
// as an escape: two hex digits, or IIS's "u" and four.
func escapeAt(b []byte) bool {
	if len(b) >= 2 && unhex(b[0]) >= 0 && unhex(b[1]) >= 0 {
		return true
	}
	if len(b) >= 5 && (b[0] == 'u' || b[0] == 'U') {
		for _, c := range b[1:5] {
			if unhex(c) < 0 {
				return false
			}
		}
		return true
	}
	return false
}

func isDot(s []byte) bool    { return len(s) == 1 && s[0] == '.' }
func isDotDot(s []byte) bool { return len(s) == 2 && s[0] == '.' && s[1] == '.' }

const hex = "0123456789ABCDEF"

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// Classes of literal bytes in a raw path.
const (
	encoded   = iota // forwarded percent-encoded
	literal          // forwarded as is: unreserved, sub-delims but ';', ':', '@'
	ctl              // refused: control bytes and space
	backslash        // refused
	semicolon        // refused
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch b := byte(c); {
		case b < 0x20 || b == 0x7f || b == ' ':
			t[c] = ctl
		case unreserved(b) || bytes.IndexByte([]byte("!$&'()*+,=:@"), b) >= 0:
			t[c] = literal
		case b == '\\':
			t[c] = backslash
		case b == ';':
			t[c] = semicolon
		}
	}
	return t
}()
