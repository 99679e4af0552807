package server

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync/atomic"
)

// The wire guard: what the raw-header guard (framing.go) cannot see
// because fasthttp consumes it before the handler runs, or never finishes
// parsing it. Every accepted connection is wrapped; the wrapper follows the
// request framing on the byte stream (request line and header lines, then
// a Content-Length body or chunk lines and chunk data) and stops the stream
// at the first byte that breaks a rule:
//
//   - a line (request line, header line, chunk size line, trailer line)
//     ending in a bare LF, or holding a CR not followed by LF (RFC 9112
//     section 2.2). fasthttp takes a bare LF line ending, and a header block
//     of bare LF lines waits for a CRLFCRLF that may never come: the
//     connection would hang until the read timeout;
//   - a chunk size of no hex digit or of more than maxChunkDigits (fasthttp
//     would answer it, but the guard has to stop following the framing);
//   - more than maxChunkExt bytes of chunk extensions in one message:
//     fasthttp reads extensions without a bound and drops them;
//   - a chunk not followed by CRLF;
//   - chunk sizes adding up past the body bound (maxBody): 413 as soon as
//     the size line that passes it arrives. Request bodies are read by the
//     handler as they arrive (upload.go), so without this a chunk declaring
//     more than the bound would be waited for.
//
// Reads then return the bytes before that byte and, after them, a
// wireError: fasthttp fails the request it was reading, the ErrorHandler
// answers 400 (conn.refusal) and the connection is closed. A request the
// guard cannot follow (a Transfer-Encoding other than chunked, a bad or
// repeated Content-Length) is refused by framing.go and closes the
// connection, so the wrapper stops checking there. The wrapper only ever
// shortens the stream: it never changes a byte fasthttp parses.

// maxChunkExt bounds the chunk extension bytes of one message (the bytes of
// chunk size lines after the size): no client of this gateway needs them,
// and fasthttp drops them.
const maxChunkExt = 4096

// maxChunkDigits is the longest chunk size fasthttp parses on 64-bit
// platforms (15 hex digits; more is an overflow).
const maxChunkDigits = 15

type wireState uint8

const (
	wireHead      wireState = iota // request line and header lines
	wireBody                       // Content-Length body bytes
	wireChunkLine                  // a chunk size line
	wireChunkData                  // chunk data bytes
	wireChunkEnd                   // the CRLF after chunk data
	wireTrailer                    // trailer lines after the last chunk
	wireOff                        // not followed: the request is refused
)

// wire follows the framing of the requests on one connection.
type wire struct {
	state    wireState
	line     []byte // the current line so far, without its LF
	maxLine  int    // a longer head line is fasthttp's to refuse (431)
	maxBody  int64  // chunk sizes of one message adding up past it: 413 (0: no bound)
	body     int64  // chunk sizes of this message so far
	inHead   bool   // the request line has been read
	cl       int64  // Content-Length, -1 when absent
	clBad    bool   // Content-Length repeated or not digits
	te       int    // Transfer-Encoding lines
	teOther  bool   // a Transfer-Encoding value other than chunked
	remain   int64  // body or chunk bytes still to come
	ext      int    // chunk extension bytes in this message
	endSeen  int    // bytes of the chunk's closing CRLF seen
	refusal  *Error // set at the first violation
	refusedN int    // bytes of the stream delivered before the violation
}

func newWire(maxLine int) *wire {
	return &wire{maxLine: maxLine, cl: -1}
}

// feed follows p and returns how many of its bytes may be delivered: len(p)
// unless a rule is broken in p, then the offset of the offending byte.
func (w *wire) feed(p []byte) int {
	i := 0
	for i < len(p) && w.refusal == nil {
		switch w.state {
		case wireOff:
			return len(p)
		case wireBody, wireChunkData:
			n := int64(len(p) - i)
			if n > w.remain {
				n = w.remain
			}
			i += int(n)
			w.remain -= n
			if w.remain == 0 {
				if w.state == wireBody {
					w.startMessage()
				} else {
					w.state, w.endSeen = wireChunkEnd, 0
				}
			}
		case wireChunkEnd:
			if p[i] != "\r\n"[w.endSeen] {
				return w.refuse(i, errChunkLine)
			}
			i++
			if w.endSeen++; w.endSeen == 2 {
				w.state = wireChunkLine
			}
		default:
			i = w.lineBytes(p, i)
		}
	}
	if w.refusal != nil {
		return w.refusedN
	}
	return len(p)
}

func (w *wire) refuse(at int, e *Error) int {
	w.refusal, w.refusedN = e, at
	return at
}

// lineBytes takes the bytes of a line from p[i:], and the line itself when
// its LF is there; it returns where it stopped.
func (w *wire) lineBytes(p []byte, i int) int {
	j := bytes.IndexByte(p[i:], '\n')
	seg := p[i:]
	if j >= 0 {
		seg = p[i : i+j]
	}
	if w.state == wireChunkLine {
		// The size, the extensions left to this message, and the CR: the
		// first byte past that is refused as it arrives.
		limit := maxChunkDigits + maxChunkExt - w.ext + 1
		if len(w.line)+len(seg) > limit {
			return w.refuse(i+limit-len(w.line), errChunkLine)
		}
	}
	if len(w.line)+len(seg) > w.maxLine {
		// fasthttp refuses a head larger than its read buffer (431).
		w.state = wireOff
		return len(p)
	}
	if j < 0 {
		w.line = append(w.line, seg...)
		return len(p)
	}
	lf := i + j
	line := seg // a line within one read is not copied
	if len(w.line) > 0 {
		w.line = append(w.line, seg...)
		line = w.line
	}
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return w.refuse(lf, errLineEnding)
	}
	line = line[:len(line)-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return w.refuse(lf, errLineEnding)
	}
	if e := w.endLine(line); e != nil {
		return w.refuse(lf, e)
	}
	w.line = w.line[:0]
	return lf + 1
}

// endLine acts on a complete line (without its CRLF).
func (w *wire) endLine(line []byte) *Error {
	switch w.state {
	case wireHead:
		switch {
		case !w.inHead && len(line) == 0:
			// RFC 9112 section 2.2: empty lines before a request line are
			// ignored (fasthttp does too).
		case !w.inHead:
			w.inHead = true
		case len(line) == 0:
			w.endHead()
		default:
			w.headerLine(line)
		}
	case wireChunkLine:
		return w.chunkLine(line)
	case wireTrailer:
		if len(line) == 0 {
			w.startMessage()
		}
	}
	return nil
}

// headerLine notes the framing headers; anything else about the header
// is framing.go's to check.
func (w *wire) headerLine(line []byte) {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return
	}
	name, value := line[:colon], trimOWS(line[colon+1:])
	switch {
	case bytes.EqualFold(name, nameCL):
		if w.cl >= 0 || !isDigits(value) || len(value) > 18 {
			w.clBad = true
			return
		}
		w.cl = 0
		for _, c := range value {
			w.cl = w.cl*10 + int64(c-'0')
		}
	case bytes.EqualFold(name, nameTE):
		w.te++
		w.teOther = w.teOther || !bytes.EqualFold(value, chunked)
	}
}

// endHead chooses the body framing the way fasthttp does for a request it
// accepts: chunked, else Content-Length, else no body.
func (w *wire) endHead() {
	switch {
	case w.te > 0 && (w.teOther || w.te > 1 || w.cl >= 0 || w.clBad):
		w.state = wireOff // refused by framing.go or fasthttp
	case w.te > 0:
		w.state, w.ext, w.body = wireChunkLine, 0, 0
	case w.clBad:
		w.state = wireOff
	case w.cl > 0:
		w.state, w.remain = wireBody, w.cl
	default:
		w.startMessage()
	}
}

// chunkLine reads a chunk size line: hex digits, then extensions.
func (w *wire) chunkLine(line []byte) *Error {
	var size int64
	n := 0
	for ; n < len(line); n++ {
		v, ok := unhex(line[n])
		if !ok {
			break
		}
		size = size<<4 | int64(v)
	}
	if n == 0 || n > maxChunkDigits {
		return errChunkLine
	}
	if w.ext += len(line) - n; w.ext > maxChunkExt {
		return errChunkLine
	}
	if size == 0 {
		w.state = wireTrailer
		return nil
	}
	if w.body += size; w.maxBody > 0 && w.body > w.maxBody {
		return ErrBodyTooLarge
	}
	w.state, w.remain = wireChunkData, size
	return nil
}

func (w *wire) startMessage() {
	w.state, w.inHead, w.cl, w.clBad, w.te, w.teOther = wireHead, false, -1, false, 0, false
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// wireError is what a guarded connection's Read returns after a
// violation; it is no timeout.
type wireError struct{ answer *Error }

func (e *wireError) Error() string { return "framing refused on the wire: " + e.answer.Message }

// guardedConn is an accepted connection read through its wire guard.
// fasthttp reads a connection from one goroutine, the one that also runs
// the ErrorHandler; err is atomic all the same.
type guardedConn struct {
	net.Conn
	w   *wire
	err atomic.Pointer[wireError]
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if e := c.err.Load(); e != nil {
		return 0, e
	}
	n, err := c.Conn.Read(p)
	if ok := c.w.feed(p[:n]); ok < n {
		e := &wireError{answer: c.w.refusal}
		c.err.Store(e)
		if ok == 0 {
			return 0, e
		}
		return ok, nil
	}
	return n, err
}

// refusal is the answer for a request the wire guard stopped, or nil.
func (c *guardedConn) refusal() *Error {
	if e := c.err.Load(); e != nil {
		return e.answer
	}
	return nil
}

// guardedListener wraps every accepted connection in a wire guard.
type guardedListener struct {
	net.Listener
	maxLine int
	maxBody int
}

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	w := newWire(l.maxLine)
	w.maxBody = int64(l.maxBody)
	g := &guardedConn{Conn: c, w: w}
	if tc, ok := c.(tlsConn); ok {
		return guardedTLSConn{guardedConn: g, tls: tc}, nil
	}
	return g, nil
}

// tlsConn is what fasthttp looks for to tell a TLS connection
// (RequestCtx.IsTLS, TLSConnectionState).
type tlsConn interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

// guardedTLSConn is a guardedConn over a TLS connection: the guard reads
// the decrypted stream, and fasthttp still sees a TLS connection.
type guardedTLSConn struct {
	*guardedConn
	tls tlsConn
}

func (c guardedTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c guardedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }
