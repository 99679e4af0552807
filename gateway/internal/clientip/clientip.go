// Package clientip finds a request's client address: the connection's
// peer, or, when the peer is a trusted proxy, the right-most address of
// the forwarding header that is not a trusted proxy.
//
// Each trusted proxy appends the address it heard from to the header, so
// reading right to left, every address up to the first untrusted one was
// written by a proxy we trust; the first untrusted address is the client
// as the outermost trusted proxy saw it. Whatever lies left of it was
// written by the client and is ignored. A peer that is not trusted is the
// client, whatever headers it sends: a spoofed header changes nothing.
package clientip

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"unsafe"
)

// Header names the forwarding header read from trusted proxies.
type Header uint8

// Headers.
const (
	XForwardedFor Header = iota // X-Forwarded-For: 203.0.113.7, 10.0.0.2
	Forwarded                   // RFC 7239: for=203.0.113.7;proto=https, for="[2001:db8::1]:443"
)

// ParseHeader reads a header setting: "x-forwarded-for" (or "") or
// "forwarded", any case.
func ParseHeader(s string) (Header, error) {
	switch strings.ToLower(s) {
	case "", "x-forwarded-for":
		return XForwardedFor, nil
	case "forwarded":
		return Forwarded, nil
	}
	return 0, fmt.Errorf("client IP header must be X-Forwarded-For or Forwarded, got %q", s)
}

// Name is the header's canonical name.
func (h Header) Name() string {
	if h == Forwarded {
		return "Forwarded"
	}
	return "X-Forwarded-For"
}

// Resolver finds client addresses. The zero value trusts no proxy: the
// client is always the peer. It is immutable and safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
	header  Header
}

// NewResolver trusts the proxies in the CIDRs (a bare address is one
// host) and reads header from them.
func NewResolver(cidrs []string, header Header) (*Resolver, error) {
	r := &Resolver{header: header}
	for _, c := range cidrs {
		p, err := ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// ParsePrefix reads a CIDR or a bare address (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q is not a CIDR: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q is not an address or CIDR: %w", s, err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Header is the header the resolver reads.
func (r *Resolver) Header() Header { return r.header }

// Trusted reports whether a is a trusted proxy.
func (r *Resolver) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client of a request from peer whose forwarding
// header lines (in order) are lines. It reads right to left past trusted
// proxies and returns the first address not trusted; when every address
// is trusted, the left-most. An entry that is not an address (garbage,
// "unknown", an obfuscated Forwarded node) ends the walk: the last
// trusted hop, which passed it on, is taken as the client. It does not
// allocate unless an entry is malformed.
func (r *Resolver) Client(peer netip.Addr, lines [][]byte) netip.Addr {
	client := peer.Unmap()
	if len(r.trusted) == 0 || !r.Trusted(client) {
		return client
	}
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for len(line) > 0 {
			var elem []byte
			if j := bytes.LastIndexByte(line, ','); j >= 0 {
				elem, line = line[j+1:], line[:j]
			} else {
				elem, line = line, nil
			}
			elem = bytes.TrimSpace(elem)
			if len(elem) == 0 {
				continue // empty list elements are allowed ("a, , b")
			}
			var a netip.Addr
			var ok bool
			if r.header == Forwarded {
				a, ok = forwardedFor(elem)
			} else {
				a, ok = parseNode(elem)
			}
			if !ok {
				return client
			}
			client = a
			if !r.Trusted(a) {
				return a
			}
		}
	}
	return client
}

// forwardedFor reads the for= parameter of one Forwarded element
// ("for=192.0.2.1;proto=https").
func forwardedFor(elem []byte) (netip.Addr, bool) {
	for len(elem) > 0 {
		var pair []byte
		if j := bytes.IndexByte(elem, ';'); j >= 0 {
			pair, elem = elem[:j], elem[j+1:]
		} else {
			pair, elem = elem, nil
		}
		pair = bytes.TrimSpace(pair)
		eq := bytes.IndexByte(pair, '=')
		if eq != 3 || !asciiEqualFold(pair[:3], "for") {
			continue
		}
		v := pair[4:]
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return parseNode(v)
	}
	return netip.Addr{}, false
}

// parseNode reads an address, optionally with a port ("1.2.3.4:80",
// "[::1]:80", "[::1]"). IPv6 zones are refused.
func parseNode(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		rest := b[end+1:]
		if len(rest) > 0 && !validPort(rest) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if c := bytes.IndexByte(b, ':'); c >= 0 && bytes.Count(b, colon) == 1 {
		if !validPort(b[c:]) {
			return netip.Addr{}, false
		}
		b = b[:c]
	}
	// The string is read only during the call (netip keeps no reference
	// to it: a zone is copied, and refused below), so it may alias b.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

var colon = []byte{':'}

// validPort is ":" followed by 1-5 digits.
func validPort(b []byte) bool {
	if len(b) < 2 || len(b) > 6 || b[0] != ':' {
		return false
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
