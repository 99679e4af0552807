package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// hopByHop are the headers that describe one connection, never forwarded
// (RFC 9110 section 7.6.1), plus the non-standard Proxy-Connection.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

// MaxConnectionOptions bounds the names the Connection lines of one message
// may list, so stripping them is bounded work. Real clients send one to
// three.
const MaxConnectionOptions = 32

// ErrConnectionOptions: a message's Connection lines name more than
// MaxConnectionOptions options.
var ErrConnectionOptions = errors.New("proxy: the Connection header names too many options")

// ownedByGateway reports whether a Connection option names a header the
// gateway routes or frames the message by; such options are ignored.
func ownedByGateway(name []byte) bool {
	return bytes.EqualFold(name, strHost) || bytes.EqualFold(name, strContentLength) ||
		bytes.EqualFold(name, strTransferEncoding)
}

var (
	strHost             = []byte(fasthttp.HeaderHost)
	strContentLength    = []byte(fasthttp.HeaderContentLength)
	strTransferEncoding = []byte(fasthttp.HeaderTransferEncoding)
	strConnection       = []byte(fasthttp.HeaderConnection)
)

// connOptions are the names listed by the Connection lines of a message,
// slices of the header values.
type connOptions struct {
	names [MaxConnectionOptions][]byte
	n     int
}

// add splits one Connection value into its comma-separated names; false
// when there are more than MaxConnectionOptions in all.
func (c *connOptions) add(v []byte) bool {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if tok = trimOWS(tok); len(tok) == 0 || ownedByGateway(tok) {
			continue
		}
		if c.n == len(c.names) {
			return false
		}
		c.names[c.n] = tok
		c.n++
	}
	return true
}

// has reports whether name is one of the options, ignoring ASCII case.
func (c *connOptions) has(name []byte) bool {
	for _, o := range c.names[:c.n] {
		if bytes.EqualFold(o, name) {
			return true
		}
	}
	return false
}

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if len(h) == len(name) && bytes.EqualFold([]byte(h), name) {
			return true
		}
	}
	return false
}

// StripRequest removes from a request about to be forwarded its hop-by-hop
// headers and every header named in any of its Connection lines (names
// compare ignoring case; Host, Content-Length and Transfer-Encoding are
// never removed that way). It returns ErrConnectionOptions, having removed
// nothing, when the Connection lines name more than MaxConnectionOptions
// options. It does not allocate.
//
// The server normalises request header names, so the names fasthttp
// compares exactly are already canonical.
func StripRequest(req *fasthttp.Request) error {
	h := &req.Header
	var c connOptions
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		if !c.add(v) {
			return ErrConnectionOptions
		}
	}
	for _, name := range c.names[:c.n] {
		h.DelBytes(name)
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	return nil
}

// StripResponse removes the same headers as StripRequest from an upstream
// response. Upstream header names are kept as the upstream wrote them (the
// clients do not normalise them), so names are compared ignoring case.
func StripResponse(resp *fasthttp.Response) error {
	h := &resp.Header
	var c connOptions
	for k, v := range h.All() {
		if bytes.EqualFold(k, strConnection) && !c.add(v) {
			return ErrConnectionOptions
		}
	}
	// Headers cannot be removed while they are visited: collect a batch
	// of names, remove them, and look again until a pass finds fewer than
	// a full batch.
	for {
		var del [16][]byte
		n := 0
		for k := range h.All() {
			if n == len(del) {
				break
			}
			if (isHopByHop(k) || c.has(k)) && !ownedByGateway(k) && !containsExact(del[:n], k) {
				del[n] = k
				n++
			}
		}
		for _, k := range del[:n] {
			h.DelBytes(k)
		}
		if n < len(del) {
			break
		}
	}
	// fasthttp keeps Connection: close and the framing headers outside its
	// header list.
	for _, name := range hopByHop {
		h.Del(name)
	}
	return nil
}

func containsExact(list [][]byte, s []byte) bool {
	for _, l := range list {
		if bytes.Equal(l, s) {
			return true
		}
	}
	return false
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// CheckRequest reports whether StripRequest and SetForwarded with f would
// refuse req (ErrConnectionOptions, ErrForwardedForTooLong), changing
// nothing: the server calls it before anything is looked up or counted, so
// a request refused for its headers costs no limit. It does not allocate.
func CheckRequest(req *fasthttp.Request, f Forwarding) error {
	h := &req.Header
	var c connOptions
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		if !c.add(v) {
			return ErrConnectionOptions
		}
	}
	if c.has(hdrXFF) { // removed as hop-by-hop: no list to bound
		return nil
	}
	limit := f.MaxForwardedFor
	if limit <= 0 {
		limit = DefaultMaxForwardedFor
	}
	n := 0
	for _, v := range h.PeekAll(string(hdrXFF)) {
		if v = trimOWS(v); len(v) == 0 {
			continue
		}
		if n > 0 {
			n += len(listComma)
		}
		if n += len(v); n > limit {
			return ErrForwardedForTooLong
		}
	}
	return nil
}

// ClientHeaders says what becomes of the Forwarded and X-Real-IP headers a
// client sends.
type ClientHeaders string

const (
	// StripClientHeaders removes them; the gateway sets X-Real-IP to the
	// client address (the default).
	StripClientHeaders ClientHeaders = "strip"
	// PassClientHeaders forwards them unchanged and sets no X-Real-IP: for
	// a gateway that only ever hears from a proxy that sets them.
	PassClientHeaders ClientHeaders = "pass"
)

// DefaultMaxForwardedFor bounds the incoming X-Forwarded-For list when
// Forwarding.MaxForwardedFor is not set.
const DefaultMaxForwardedFor = 1024

// ErrForwardedForTooLong: the X-Forwarded-For list a request brings is
// longer than Forwarding.MaxForwardedFor.
var ErrForwardedForTooLong = errors.New("proxy: X-Forwarded-For is too long")

// Forwarding configures the headers that tell the upstream about the
// client. The zero value is the default.
type Forwarding struct {
	// MaxForwardedFor bounds the incoming X-Forwarded-For list, all its
	// lines joined with ", " (DefaultMaxForwardedFor when 0).
	MaxForwardedFor int
	// ClientHeaders is StripClientHeaders when empty.
	ClientHeaders ClientHeaders
}

var (
	hdrXFF     = []byte("X-Forwarded-For")
	hdrRealIP  = []byte("X-Real-IP")
	hdrProto   = []byte("X-Forwarded-Proto")
	hdrFwdHost = []byte("X-Forwarded-Host")
	hdrFwd     = []byte("Forwarded")
	valueHTTP  = []byte("http")
	valueHTTPS = []byte("https")
	listComma  = []byte(", ")
)

// SetForwarded sets the headers that tell the upstream about the client,
// after StripRequest so a Connection option cannot remove them:
//
//   - X-Forwarded-For: every incoming X-Forwarded-For line joined into one
//     comma list (RFC 9110 section 5.3), the client address last, sent as
//     one line; an incoming list longer than f.MaxForwardedFor returns
//     ErrForwardedForTooLong and changes nothing;
//   - X-Forwarded-Proto and X-Forwarded-Host: what the client used;
//   - Forwarded and X-Real-IP: per f.ClientHeaders.
//
// It does not allocate while the joined list fits 512 bytes.
func SetForwarded(req *fasthttp.Request, remote net.Addr, tls bool, f Forwarding) error {
	h := &req.Header
	limit := f.MaxForwardedFor
	if limit <= 0 {
		limit = DefaultMaxForwardedFor
	}
	var buf [512]byte
	xff := buf[:0]
	for _, v := range h.PeekAll(string(hdrXFF)) {
		if v = trimOWS(v); len(v) == 0 {
			continue
		}
		if len(xff) > 0 {
			xff = append(xff, listComma...)
		}
		if len(xff)+len(v) > limit {
			return ErrForwardedForTooLong
		}
		xff = append(xff, v...)
	}
	joined := len(xff)
	if joined > 0 {
		xff = append(xff, listComma...)
	}
	start := len(xff)
	xff = appendClient(xff, remote)
	client := xff[start:]
	if len(client) == 0 { // no address known: the list as it came
		xff = xff[:joined]
	}
	h.DelBytes(hdrXFF)
	if len(xff) > 0 {
		h.SetBytesKV(hdrXFF, xff)
	}
	if tls {
		h.SetBytesKV(hdrProto, valueHTTPS)
	} else {
		h.SetBytesKV(hdrProto, valueHTTP)
	}
	h.SetBytesKV(hdrFwdHost, req.Host())
	if f.ClientHeaders != PassClientHeaders {
		h.DelBytes(hdrFwd)
		h.DelBytes(hdrRealIP)
		if len(client) > 0 {
			h.SetBytesKV(hdrRealIP, client)
		}
	}
	return nil
}

// appendClient appends the IP address of remote, without port or brackets.
func appendClient(dst []byte, remote net.Addr) []byte {
	if ta, ok := remote.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().AppendTo(dst)
	}
	if remote == nil {
		return dst
	}
	if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
		return ap.Addr().Unmap().AppendTo(dst)
	}
	return dst
}
