package reqpath

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw, decoded, escaped string
		err                   error
	}{
		{"/", "/", "/", nil},
		{"/orders/1", "/orders/1", "/orders/1", nil},
		{"/orders/1/", "/orders/1/", "/orders/1/", nil},
		{"//a///b//", "/a/b/", "/a/b/", nil},
		{"/%61%62c", "/abc", "/abc", nil},
		{"/a%7eb%2D", "/a~b-", "/a~b-", nil},
		{"/a%3ab%3A", "/a:b:", "/a%3Ab%3A", nil},
		{"/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", nil},
		{"/a%20b", "/a b", "/a%20b", nil},
		{"/100%25", "/100%", "/100%25", nil},
		{"/100%25x", "/100%x", "/100%25x", nil},
		{"/a%3Bb", "/a;b", "/a%3Bb", nil},
		{"/a%3fb%23c", "/a?b#c", "/a%3Fb%23c", nil},
		{"/{x}|\"^`<>[]", "/{x}|\"^`<>[]", "/%7Bx%7D%7C%22%5E%60%3C%3E%5B%5D", nil},
		{"/caf%C3%A9", "/café", "/caf%C3%A9", nil},
		{"/café", "/café", "/caf%C3%A9", nil},
		{"/a/./b", "/a/b", "/a/b", nil},
		{"/a/.", "/a/", "/a/", nil},
		{"/a/./", "/a/", "/a/", nil},
		{"/a/b/../c", "/a/c", "/a/c", nil},
		{"/a/b/..", "/a/", "/a/", nil},
		{"/a/..", "/", "/", nil},
		{"/a/../", "/", "/", nil},
		{"/a/%2e%2E/b", "/b", "/b", nil},
		{"/a/.%2e/b", "/b", "/b", nil},
		{"/a//..//b", "/b", "/b", nil},
		{"/a.b/c.d", "/a.b/c.d", "/a.b/c.d", nil},
		{"/.hidden/..x", "/.hidden/..x", "/.hidden/..x", nil},

		{"", "", "", ErrTarget},
		{"a/b", "", "", ErrTarget},
		{"/..", "", "", ErrAboveRoot},
		{"/a/../..", "", "", ErrAboveRoot},
		{"/%2e%2e/a", "", "", ErrAboveRoot},
		{"/a%", "", "", ErrEscape},
		{"/a%4", "", "", ErrEscape},
		{"/a%zz", "", "", ErrEscape},
		{"/a%%41", "", "", ErrEscape},
		{"/a%00", "", "", ErrControl},
		{"/a\x00b", "", "", ErrControl},
		{"/a\tb", "", "", ErrControl},
		{"/a b", "", "", ErrControl},
		{"/a%7F", "", "", ErrControl},
		{"/a%2Fb", "", "", ErrEncodedSlash},
		{"/a%2fb", "", "", ErrEncodedSlash},
		{"/a%5Cb", "", "", ErrBackslash},
		{"/a\\b", "", "", ErrBackslash},
		{"/a;b", "", "", ErrPathParam},
		{"/..;/a", "", "", ErrPathParam},
		{"/a/..%3B/b", "", "", ErrDotParam},
		{"/a/.%3bx/b", "", "", ErrDotParam},
		{"/%252e%252e/a", "", "", ErrDoubleEncoding},
		{"/a%252Fb", "", "", ErrDoubleEncoding},
		{"/a%25%32%65", "", "", ErrDoubleEncoding},
		{"/a%2541", "", "", ErrDoubleEncoding},
		{"/a%25u002e", "", "", ErrDoubleEncoding},
		{"/a%C0%AE", "", "", ErrUTF8},
		{"/a%C0%AF", "", "", ErrUTF8},
		{"/a%E0%80%AE", "", "", ErrUTF8},
		{"/a%ED%A0%80", "", "", ErrUTF8},
		{"/a%FF", "", "", ErrUTF8},
		{"/a\xc0\xae", "", "", ErrUTF8},
		{"/admin.", "", "", ErrTrailingDot},
		{"/admin%2e", "", "", ErrTrailingDot},
		{"/.../a", "", "", ErrTrailingDot},
		{"/admin%20/x", "", "", ErrTrailingDot},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			t.Parallel()
			var p Path
			err := p.Parse([]byte(c.raw))
			if !errors.Is(err, c.err) {
				t.Fatalf("Parse(%q) error %v, want %v", c.raw, err, c.err)
			}
			if string(p.Decoded()) != c.decoded || string(p.Escaped()) != c.escaped {
				t.Fatalf("Parse(%q) = %q, %q; want %q, %q", c.raw, p.Decoded(), p.Escaped(), c.decoded, c.escaped)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		target, escaped string
		err             error
	}{
		{"/a/b?x=/../y", "/a/b", nil},
		{"/a/b#/../y", "", ErrFragment},
		{"/a/b?q#x", "", ErrFragment},
		{"/a/%2e%2e/b?q", "/b", nil},
		{"http://h.example/a/./b?q", "/a/b", nil},
		{"HTTPS://h.example:8443", "/", nil},
		{"http://h.example?q=/x", "/", nil},
		{"//h.example/a", "/h.example/a", nil},
		{"*", "", ErrTarget},
		{"h.example:443", "", ErrTarget},
		{"ftp://h/a", "", ErrTarget},
		{"http://h/a%2fb", "", ErrEncodedSlash},
	}
	for _, c := range cases {
		var p Path
		err := p.ParseTarget([]byte(c.target))
		if !errors.Is(err, c.err) || string(p.Escaped()) != c.escaped {
			t.Errorf("ParseTarget(%q) = %q, %v; want %q, %v", c.target, p.Escaped(), err, c.escaped, c.err)
		}
	}
}

func TestWithinAndRest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw, prefix string
		within      bool
		rest        string
	}{
		{"/demo/public/x", "/demo", true, "/public/x"},
		{"/demo", "/demo", true, "/"},
		{"/demo/", "/demo", true, "/"},
		{"/demo/public/../admin", "/demo", true, "/admin"},
		{"/demo/public/%2e%2e/%2e%2e/demo/admin", "/demo", false, "/admin"},
		{"/other/../demo/x", "/demo", false, "/x"},
		{"/demo/%7Bid%7D/caf%c3%a9", "/demo", true, "/%7Bid%7D/caf%C3%A9"},
		{"/a%20b/c/d", "/a b/c", true, "/d"},
		{"/x/..", "", true, "/"},
	}
	for _, c := range cases {
		var p Path
		if err := p.Parse([]byte(c.raw)); err != nil {
			t.Fatalf("Parse(%q): %v", c.raw, err)
		}
		if !bytes.HasPrefix(p.Decoded(), []byte(c.prefix)) {
			t.Fatalf("%q: decoded %q lacks prefix %q", c.raw, p.Decoded(), c.prefix)
		}
		if got := p.Within(len(c.prefix)); got != c.within {
			t.Errorf("%q Within(%q) = %v, want %v", c.raw, c.prefix, got, c.within)
		}
		if got := string(p.EscapedRest(len(c.prefix))); got != c.rest {
			t.Errorf("%q EscapedRest(%q) = %q, want %q", c.raw, c.prefix, got, c.rest)
		}
	}
}

// A Path reused after an error or a long path holds only the new one.
func TestReuse(t *testing.T) {
	t.Parallel()
	var p Path
	for _, raw := range []string{"/a/b/../c", "/x%2fy", "/" + strings.Repeat("long/", 100), "/a/..", "/%2e%2e"} {
		_ = p.Parse([]byte(raw))
	}
	if err := p.Parse([]byte("/q/../r")); err != nil || string(p.Decoded()) != "/r" || !p.Within(0) || p.Within(2) {
		t.Fatalf("reuse: %q %v", p.Decoded(), err)
	}
	if err := p.Parse([]byte("/r")); err != nil || p.floor != -1 {
		t.Fatalf("floor kept across parses: %d", p.floor)
	}
}

// FuzzParse checks the contract on any input: no panic; an accepted path
// starts with '/', has no empty, "." or ".." segment (bar a trailing
// slash) and no escape left after its one decoding; Escaped decodes once to
// Decoded, and so does each EscapedRest to the rest of Decoded; normalising
// the output again is a no-op; the result is the reference resolution of
// RFC 3986 section 5.2.4; joining it under a normal base path gives a
// normal path that stays under the base.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/", "/a/b/../c", "/%252e%252e/x", "/a%2fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var p, q Path
		if msg := check(&p, &q, raw); msg != "" {
			t.Fatalf("%q: %s", raw, msg)
		}
	})
}

// check returns what is wrong with p's parse of raw (q is scratch), or "".
func check(p, q *Path, raw string) string {
	err := p.Parse([]byte(raw))
	if err != nil {
		if len(p.Decoded()) != 0 || len(p.Escaped()) != 0 {
			return fmt.Sprintf("error %v left a path %q", err, p.Decoded())
		}
		return ""
	}
	dec, esc := string(p.Decoded()), string(p.Escaped())
	if dec[0] != '/' || esc[0] != '/' || strings.Count(dec, "/") != strings.Count(esc, "/") {
		return fmt.Sprintf("decoded %q escaped %q", dec, esc)
	}
	for _, seg := range strings.Split(dec[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Sprintf("dot segment left in %q", dec)
		}
	}
	if strings.Contains(dec[:len(dec)-1], "//") {
		return fmt.Sprintf("empty segment in %q", dec)
	}
	if once, err := url.PathUnescape(esc); err != nil || once != dec {
		return fmt.Sprintf("escaped %q decodes to %q (%v), want %q", esc, once, err, dec)
	}
	if !utf8.ValidString(dec) {
		return fmt.Sprintf("decoded %q is not UTF-8", dec)
	}
	if twice, err := url.PathUnescape(dec); err == nil && twice != dec {
		return fmt.Sprintf("decoded %q changes on a second decoding: %q", dec, twice)
	}
	if err := q.Parse(p.Escaped()); err != nil || string(q.Decoded()) != dec || string(q.Escaped()) != esc {
		return fmt.Sprintf("not idempotent: %q %q -> %q %q %v", dec, esc, q.Decoded(), q.Escaped(), err)
	}
	if want, ok := reference(raw); ok && want != dec {
		return fmt.Sprintf("decoded %q, reference resolution %q", dec, want)
	}
	for n := 0; n <= len(dec); n++ {
		if n < len(dec) && dec[n] != '/' {
			continue
		}
		rest, err := url.PathUnescape(string(p.EscapedRest(n)))
		if want := dec[n:]; err != nil || rest != want && !(want == "" && rest == "/") {
			return fmt.Sprintf("EscapedRest(%d) of %q decodes to %q (%v), want %q", n, esc, rest, err, want)
		}
	}
	joined := "/based" + esc
	if err := q.Parse([]byte(joined)); err != nil || string(q.Escaped()) != joined {
		return fmt.Sprintf("base + %q is not normal: %q %v", esc, q.Escaped(), err)
	}
	return ""
}

// reference decodes raw once, merges runs of '/' and removes dot segments
// as RFC 3986 section 5.2.4 writes the algorithm (no climbing above the
// root: false then).
func reference(raw string) (string, bool) {
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return "", false
	}
	for strings.Contains(dec, "//") {
		dec = strings.ReplaceAll(dec, "//", "/")
	}
	in, out := dec, ""
	for in != "" {
		switch {
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../") || in == "/..":
			if out == "" {
				return "", false
			}
			in = "/" + in[min(len(in), 4):]
			out = out[:strings.LastIndex(out, "/")]
		default:
			i := strings.IndexByte(in[1:], '/')
			if i < 0 {
				out, in = out+in, ""
			} else {
				out, in = out+in[:i+1], in[i+1:]
			}
		}
	}
	return out, true
}

// BenchmarkParse: go test -run '^$' -bench Parse -benchmem ./internal/reqpath/
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, raw string }{
		{"plain", "/orders/v2/items/12345"},
		{"encoded", "/orders/v2/items/caf%c3%a9/%7Bid%7D"},
		{"dots", "/orders/v2/./items/../items/12345"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var p Path
			raw := []byte(c.raw)
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := p.Parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
