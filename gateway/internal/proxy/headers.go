package proxy

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// hopByHop are the headers that describe one connection, never forwarded
// (RFC 9110 section 7.6.1), plus the non-standard Proxy-Connection.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

type header interface {
	Peek(key string) []byte
	Del(key string)
	DelBytes(key []byte)
}

// stripHopByHop removes the hop-by-hop headers of h and every header named
// in its Connection header.
func stripHopByHop(h header) {
	if conn := h.Peek("Connection"); len(conn) > 0 {
		var buf [256]byte
		names := append(buf[:0], conn...)
		for len(names) > 0 {
			var tok []byte
			if i := bytes.IndexByte(names, ','); i >= 0 {
				tok, names = names[:i], names[i+1:]
			} else {
				tok, names = names, nil
			}
			if tok = bytes.TrimSpace(tok); len(tok) > 0 {
				h.DelBytes(tok)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// StripRequest removes hop-by-hop headers from a request about to be
// forwarded.
func StripRequest(req *fasthttp.Request) { stripHopByHop(&req.Header) }

// StripResponse removes hop-by-hop headers from an upstream response.
func StripResponse(resp *fasthttp.Response) { stripHopByHop(&resp.Header) }

// SetForwarded appends the client address to X-Forwarded-For and sets
// X-Forwarded-Proto and X-Forwarded-Host to what the client used.
// It allocates nothing but what the headers themselves need.
func SetForwarded(req *fasthttp.Request, remote net.Addr, tls bool) {
	var buf [320]byte
	xff := buf[:0]
	if prev := req.Header.Peek("X-Forwarded-For"); len(prev) > 0 && len(prev) < 256 {
		xff = append(append(xff, prev...), ", "...)
	}
	if ta, ok := remote.(*net.TCPAddr); ok {
		xff = ta.AddrPort().Addr().Unmap().AppendTo(xff)
	} else if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
		xff = ap.Addr().AppendTo(xff)
	}
	req.Header.SetBytesV("X-Forwarded-For", xff)
	if tls {
		req.Header.Set("X-Forwarded-Proto", "https")
	} else {
		req.Header.Set("X-Forwarded-Proto", "http")
	}
	req.Header.SetBytesV("X-Forwarded-Host", req.Host())
}
