package clientip

import (
	"bytes"
	"net/netip"
	"testing"
	"unicode"
)

func mustResolver(t testing.TB, h Header, cidrs ...string) *Resolver {
	t.Helper()
	r, err := NewResolver(cidrs, h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClient(t *testing.T) {
	t.Parallel()
	trusted := []string{"10.0.0.0/8", "127.0.0.1", "2001:db8:f::/48"}
	tests := []struct {
		name   string
		header Header
		cidrs  []string
		peer   string
		lines  []string
		want   string
	}{
		{"no proxies trusted: the peer", XForwardedFor, nil, "127.0.0.1", []string{"203.0.113.9"}, "127.0.0.1"},
		{"untrusted peer spoofing", XForwardedFor, trusted, "192.0.2.50", []string{"203.0.113.9"}, "192.0.2.50"},
		{"trusted peer, no header", XForwardedFor, trusted, "10.1.2.3", nil, "10.1.2.3"},
		{"trusted peer", XForwardedFor, trusted, "10.1.2.3", []string{"203.0.113.9"}, "203.0.113.9"},
		{"right-most untrusted wins over a spoofed left", XForwardedFor, trusted, "10.1.2.3", []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"lines read last first", XForwardedFor, trusted, "10.1.2.3", []string{"1.1.1.1", "203.0.113.9,10.0.0.1"}, "203.0.113.9"},
		{"all trusted: left-most", XForwardedFor, trusted, "10.1.2.3", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7"},
		{"garbage ends the walk at the last trusted hop", XForwardedFor, trusted, "10.1.2.3", []string{"203.0.113.9, nonsense, 10.0.0.8"}, "10.0.0.8"},
		{"ports and brackets", XForwardedFor, trusted, "10.1.2.3", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"v4 with port", XForwardedFor, trusted, "10.1.2.3", []string{"203.0.113.9:5555"}, "203.0.113.9"},
		{"mapped peer is unmapped", XForwardedFor, trusted, "::ffff:10.1.2.3", []string{"203.0.113.9"}, "203.0.113.9"},
		{"empty elements skipped", XForwardedFor, trusted, "10.1.2.3", []string{"203.0.113.9, ,"}, "203.0.113.9"},
		{"zones refused", XForwardedFor, trusted, "10.1.2.3", []string{"fe80::1%eth0"}, "10.1.2.3"},
		{"forwarded", Forwarded, trusted, "10.1.2.3", []string{`for=1.1.1.1, for=203.0.113.9;proto=https;by=10.0.0.1`}, "203.0.113.9"},
		{"forwarded quoted v6", Forwarded, trusted, "10.1.2.3", []string{`For="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"forwarded obfuscated", Forwarded, trusted, "10.1.2.3", []string{`for=_hidden`}, "10.1.2.3"},
		{"forwarded untrusted peer", Forwarded, trusted, "192.0.2.50", []string{`for=203.0.113.9`}, "192.0.2.50"},
		{"forwarded without for", Forwarded, trusted, "10.1.2.3", []string{`proto=https`}, "10.1.2.3"},
		{"xff ignored when reading forwarded is configured", Forwarded, trusted, "10.1.2.3", nil, "10.1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustResolver(t, tt.header, tt.cidrs...)
			var lines [][]byte
			for _, l := range tt.lines {
				lines = append(lines, []byte(l))
			}
			got := r.Client(netip.MustParseAddr(tt.peer), lines)
			if got != netip.MustParseAddr(tt.want) {
				t.Fatalf("client %v, want %s", got, tt.want)
			}
		})
	}
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"10.0.0.0/33", "not-an-ip", "", "1.2.3.4/"} {
		if _, err := NewResolver([]string{c}, XForwardedFor); err == nil {
			t.Errorf("%q accepted", c)
		}
	}
	if _, err := ParseHeader("X-Real-IP"); err == nil {
		t.Error("X-Real-IP accepted as the client IP header")
	}
}

func TestClientAllocations(t *testing.T) {
	r := mustResolver(t, XForwardedFor, "10.0.0.0/8")
	lines := [][]byte{[]byte("1.1.1.1, 203.0.113.9, 10.9.9.9")}
	peer := netip.MustParseAddr("10.1.2.3")
	if n := testing.AllocsPerRun(100, func() { r.Client(peer, lines) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

// FuzzClient checks, for any header, that the client is the peer when the
// peer is untrusted, and otherwise an address that appears in the header
// or the peer itself; that nothing panics; and that what lies left of the
// result never decides it (prepending to the header changes nothing once
// an untrusted address was found).
func FuzzClient(f *testing.F) {
	f.Add("10.1.2.3", "1.1.1.1, 203.0.113.9, 10.9.9.9", false)
	f.Add("192.0.2.50", "203.0.113.9", false)
	f.Add("10.1.2.3", `for=1.1.1.1, for="[2001:db8::1]:80";proto=https`, true)
	f.Add("10.1.2.3", "[::1]:80,,, 10.0.0.1", false)
	f.Add("::ffff:10.0.0.1", "for=_x;for=1.2.3.4", true)
	f.Fuzz(func(t *testing.T, peerS, header string, fwd bool) {
		peer, err := netip.ParseAddr(peerS)
		if err != nil || peer.Zone() != "" {
			return
		}
		h := XForwardedFor
		if fwd {
			h = Forwarded
		}
		r := mustResolver(t, h, "10.0.0.0/8", "2001:db8:f::/48")
		lines := [][]byte{[]byte(header)}
		got := r.Client(peer, lines)
		if !r.Trusted(peer) {
			if got != peer.Unmap() {
				t.Fatalf("untrusted peer %v: client %v from header %q", peer, got, header)
			}
			return
		}
		if got != peer.Unmap() && !bytes.Contains([]byte(header), []byte(got.String())) && !bytes.Contains(bytes.ToLower([]byte(header)), []byte(got.StringExpanded())) {
			// an address the header spells differently (e.g. v6 short forms, mapped v4) is fine when it parses the same
			if !spelledIn(header, got) {
				t.Fatalf("client %v neither the peer nor in %q", got, header)
			}
		}
		if !r.Trusted(got) {
			again := r.Client(peer, [][]byte{[]byte("6.6.6.6, 7.7.7.7"), []byte(header)})
			if again != got {
				t.Fatalf("a line before the header changed the client: %v, then %v", got, again)
			}
		}
	})
}

// spelledIn reports whether some token of s parses to a.
func spelledIn(s string, a netip.Addr) bool {
	for _, tok := range bytes.FieldsFunc([]byte(s), func(r rune) bool {
		return r == ',' || r == ';' || r == '"' || r == '=' || r == '[' || r == ']' || unicode.IsSpace(r)
	}) {
		if b, ok := parseNode(tok); ok && b == a {
			return true
		}
	}
	return false
}
