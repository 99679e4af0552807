package server

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Request bodies. The server reads request bodies as streams
// (fasthttp.Server.StreamRequestBody): fasthttp hands the handler the
// header and at most 8 KiB of body it already read, and the rest stays on
// the connection until someone reads it. readBody, the stage after route,
// decides what becomes of it:
//
//   - a body up to Options.RequestBufferBytes (declared by its
//     Content-Length, or a chunked body that ends within it) is read whole
//     before the request is judged, as every body used to be, and forwarded
//     with a Content-Length;
//   - a larger one (a Content-Length above it, or a chunked body still going
//     past it) is not read on: the request is judged on its header, then the
//     body is forwarded to the upstream as it arrives (upload), counted
//     against the API's body bound and paced by the minimum rate.
//
// A body whose Content-Length passes the API's bound is refused at once
// (413), without reading it; a chunked one the moment its count passes it.

var (
	errUploadTooLarge = errors.New("request body passed the body bound")
	errUploadTooSlow  = errors.New("request body arrived slower than the minimum rate")
	errUploadCut      = errors.New("the client closed before its request body ended")

	// ErrClientClosed is the answer recorded for a request whose client
	// went away while its body was being read (499, never read by anyone).
	ErrClientClosed = newError(StatusClientClosed, "client_closed", "the client closed the connection before its request body ended")
)

// DefaultRequestBufferBytes is Options.RequestBufferBytes when unset.
const DefaultRequestBufferBytes = 1 << 20

// maxKeptBody is the largest read-whole body buffer an exchange keeps for
// the next request; a larger one goes back to the garbage collector.
const maxKeptBody = 64 << 10

// readBody reads a small request body whole, or prepares a large one to
// stream (x.upload). A body that cannot be read is answered here: 413 past
// the bound, 408 for one that did not arrive within the read timeout, the
// wire guard's 400 for broken chunk framing, 499 for a client gone; each
// closes the connection.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	body := ctx.Request.BodyStream()
	if body == nil {
		return nil // no body, or fasthttp read it already
	}
	size := ctx.Request.Header.ContentLength() // -1: chunked
	max := x.api.MaxBody
	if size > max {
		ctx.SetConnectionClose()
		return ErrBodyTooLarge
	}
	buffer := min(s.opts.RequestBufferBytes, max)
	if size > buffer {
		x.upload = s.newUpload(ctx, x, body, nil, int64(size))
		return nil
	}
	// Content-Length within the buffer, or chunked: read up to one byte
	// past the buffer to learn which side of it the body ends.
	x.body = x.body[:0]
	n, err := readAtMost(body, &x.body, buffer+1)
	switch {
	case n > max: // chunked, past the bound
		ctx.SetConnectionClose()
		return ErrBodyTooLarge
	case err != nil:
		return bodyError(ctx, err)
	case n > buffer: // a chunked body longer than the buffer: stream it
		x.upload = s.newUpload(ctx, x, body, x.body, -1)
		return nil
	}
	ctx.Request.SetBodyRaw(x.body)
	return nil
}

// readAtMost appends body to *buf until io.EOF or limit bytes; it returns
// the bytes read and the error that stopped it (nil at io.EOF or limit).
func readAtMost(body io.Reader, buf *[]byte, limit int) (int, error) {
	b := *buf
	for len(b) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			*buf = b
			return len(b), err
		}
	}
	*buf = b
	return len(b), nil
}

// bodyError answers a request body that could not be read, and closes the
// connection (its framing on the wire is lost).
func bodyError(ctx *fasthttp.RequestCtx, err error) *Error {
	ctx.SetConnectionClose()
	g, _ := ctx.Conn().(interface{ refusal() *Error }) // guardedConn, plain or TLS
	var ne net.Error
	switch {
	case g != nil && g.refusal() != nil:
		return g.refusal() // the wire guard stopped it (wire.go)
	case errors.Is(err, errUploadTooLarge), errors.Is(err, fasthttp.ErrBodyTooLarge):
		return ErrBodyTooLarge
	case errors.Is(err, errUploadTooSlow), errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.Is(err, errUploadCut), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, net.ErrClosed), errors.As(err, new(*net.OpError)):
		return ErrClientClosed
	}
	return ErrBadRequest // fasthttp refused the chunk framing
}

// upload is a request body forwarded as it arrives: the body stream of the
// request the upstream client writes. It counts the bytes against the
// API's bound and moves the client connection's read deadline before each
// read (deadline). Reads run on the handler's goroutine.
type upload struct {
	ctx    *fasthttp.RequestCtx
	prefix []byte    // read before the request was judged (a chunked body past the buffer)
	body   io.Reader // the rest, on the client connection
	size   int64     // Content-Length, -1: chunked
	max    int64
	n      int64 // body bytes received, prefix included
	err    error // why the body stopped before its end
	eof    bool

	start   time.Time
	timeout time.Duration // the longest wait for more bytes
	rate    int64         // minimum bytes per second once timeout has passed, 0: none
}

func (s *Server) newUpload(ctx *fasthttp.RequestCtx, x *exchange, body io.Reader, prefix []byte, size int64) *upload {
	return &upload{
		ctx: ctx, prefix: prefix, body: body, size: size, max: int64(x.api.MaxBody), n: int64(len(prefix)),
		timeout: s.opts.ReadTimeout, rate: s.opts.MinBodyRate,
	}
}

func (u *upload) Read(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if len(u.prefix) > 0 {
		n := copy(p, u.prefix)
		u.prefix = u.prefix[n:]
		return n, nil
	}
	if u.eof {
		return 0, io.EOF
	}
	if u.start.IsZero() {
		u.start = time.Now()
	}
	if err := u.deadline(); err != nil {
		u.err = err
		return 0, err
	}
	n, err := u.body.Read(p)
	u.n += int64(n)
	switch {
	case u.n > u.max:
		u.err = errUploadTooLarge
		return 0, u.err
	case errors.Is(err, io.EOF) && u.size >= 0 && u.n < u.size:
		u.err = errUploadCut // fasthttp reports a short Content-Length body as io.EOF
	case errors.Is(err, io.EOF):
		u.eof = true
	case err != nil && u.slow():
		u.err = errUploadTooSlow
	case err != nil:
		u.err = err
	}
	if u.err != nil {
		return n, u.err
	}
	return n, err
}

// deadline sets the client connection's read deadline for the next read:
// the read timeout from now, and no later than the moment the body would
// fall below the minimum rate, counted from one read timeout after the
// body began (the grace a slow start gets). A body that fell below it
// already is cut.
func (u *upload) deadline() error {
	if u.timeout <= 0 {
		return nil
	}
	now := time.Now()
	d := now.Add(u.timeout)
	if u.rate > 0 {
		due := u.start.Add(u.timeout + time.Duration(float64(u.n)/float64(u.rate)*float64(time.Second)))
		if !due.After(now) {
			return errUploadTooSlow
		}
		if due.Before(d) {
			d = due
		}
	}
	return u.ctx.SetReadDeadline(d)
}

// slow reports whether a read that timed out was cut by the rate rather
// than by the read timeout.
func (u *upload) slow() bool {
	if u.rate <= 0 || u.start.IsZero() {
		return false
	}
	elapsed := time.Since(u.start) - u.timeout
	return elapsed > 0 && float64(u.n) < float64(u.rate)*elapsed.Seconds()
}

// failed is the answer for an upload that stopped before its end, nil
// when it was read whole or not yet read.
func (u *upload) failed(ctx *fasthttp.RequestCtx) *Error {
	if u == nil || u.err == nil {
		return nil
	}
	return bodyError(ctx, u.err)
}

// attach makes the upload the body the upstream client writes.
func (u *upload) attach(req *fasthttp.Request) {
	req.SetBodyStream(u, int(u.size))
}

// bytesIn is the request body size of the usage event and the access log:
// the bytes received of a streamed body (forwarded or not), 0 for a body
// never read (a request refused before its body mattered).
func bytesIn(ctx *fasthttp.RequestCtx, x *exchange) int64 {
	switch {
	case x.upload != nil:
		return x.upload.n
	case ctx.Request.IsBodyStream():
		return 0 // never read: Body() would read it now
	}
	return int64(len(ctx.Request.Body()))
}
