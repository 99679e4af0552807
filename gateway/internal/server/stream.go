package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/usage"
)

// StatusClientClosed is the status recorded (events and metrics, never
// sent) for an exchange whose client went away before its response ended.
const StatusClientClosed = 499

var (
	errStreamTooLarge = errors.New("streamed response exceeds the response body bound")
	errShutdown       = errors.New("gateway shutting down")
)

// forwardStream is forward for an API with streaming settings: the
// upstream's response is read as it arrives (proxy.DoStream). A response
// the settings select becomes the body stream of ctx.Response, written to
// the client chunk by chunk, each flushed (x.stream records the exchange
// when it ends); any other is read whole, bounded, as forward does.
//
// A request whose body streams (x.upload) takes this path whatever the
// API's settings: its body is read from the client while the upstream
// client writes it, and a body that stops before its end (past the bound,
// too slow, the client gone, broken framing) is answered as such; the
// upstream saw its connection close before the request's end.
func (s *Server) forwardStream(ctx *fasthttp.RequestCtx, x *exchange, from int) *Error {
	up := fasthttp.AcquireResponse()
	if x.upload != nil {
		x.upload.attach(&ctx.Request)
	}
	if err := x.api.Upstream.DoStream(&ctx.Request, up, &x.target, from); err != nil {
		fasthttp.ReleaseResponse(up)
		if e := x.upload.failed(ctx); e != nil {
			ctx.Response.Reset()
			return e
		}
		return s.upstreamError(ctx, err)
	}
	if err := proxy.StripResponse(up); err != nil {
		s.warn(err, "upstream response refused")
		closeUpstream(up)
		return ErrUpstreamDown
	}
	body := up.BodyStream()
	max := x.api.Upstream.MaxResponseBody()
	up.Header.CopyTo(&ctx.Response.Header)
	conn := proxy.StreamConn(up)
	idle := x.api.Upstream.ReadTimeout()
	if x.api.Streaming != nil {
		idle = x.api.Streaming.EffectiveIdleTimeout()
	}
	switch {
	case body == nil: // HEAD, 1xx, 204, 304
		closeUpstream(up)
		return nil
	case x.api.Streaming == nil || !selects(x.api.Streaming, &up.Header):
		err := readWhole(ctx, body, conn, idle, max)
		closeUpstream(up)
		if err != nil {
			s.warn(err, "upstream response body")
			ctx.Response.Reset()
			return streamError(err)
		}
		return nil
	}
	size := up.Header.ContentLength()
	if max > 0 && int64(size) > max {
		closeUpstream(up)
		ctx.Response.Reset()
		return ErrUpstreamDown
	}
	if size < 0 {
		size = -1 // chunked to the client, whatever the upstream's framing
	}
	st := &stream{s: s, ctx: ctx, x: x, up: up, body: body, conn: conn, idle: idle, max: max}
	if s.opts.WriteTimeout > 0 {
		st.client, st.write = ctx.Conn(), s.opts.WriteTimeout
	}
	ctx.Response.SetBodyStream(st, size)
	ctx.Response.ImmediateHeaderFlush = true
	x.stream = st
	s.streams.add(st)
	return nil
}

// upstreamError maps an error of the upstream round trip to the answer.
func (s *Server) upstreamError(ctx *fasthttp.RequestCtx, err error) *Error {
	s.warn(err, "upstream request failed")
	ctx.Response.Reset()
	if errors.Is(err, proxy.ErrUpstreamTimeout) {
		return ErrUpstreamTimeout
	}
	return ErrUpstreamDown
}

func streamError(err error) *Error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrUpstreamTimeout
	}
	return ErrUpstreamDown
}

// closeUpstream closes a DoStream response's body (the connection goes
// back to the pool only when it was read to its end) and releases it.
func closeUpstream(up *fasthttp.Response) {
	_ = up.CloseBodyStream()
	fasthttp.ReleaseResponse(up)
}

// selects reports whether the streaming settings select a response.
func selects(st *model.Streaming, h *fasthttp.ResponseHeader) bool {
	cl := h.ContentLength()
	switch {
	case st.Chunked && cl < 0:
		return true
	case st.MinBytes > 0 && int64(cl) >= st.MinBytes:
		return true
	}
	return len(st.ContentTypes) > 0 && st.StreamsContentType(h.ContentType())
}

// readWhole reads a response body that does not stream into ctx.Response,
// at most max bytes (0: unbounded), each read bounded by idle.
func readWhole(ctx *fasthttp.RequestCtx, body io.Reader, conn net.Conn, idle time.Duration, max int64) error {
	ctx.Response.ResetBody()
	w := ctx.Response.BodyWriter()
	r := &idleReader{r: body, conn: conn, idle: idle}
	if max <= 0 {
		_, err := io.Copy(w, r)
		return err
	}
	n, err := io.CopyN(w, r, max+1)
	if n > max {
		return errStreamTooLarge
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

type idleReader struct {
	r    io.Reader
	conn net.Conn
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.conn != nil {
		_ = r.conn.SetReadDeadline(time.Now().Add(r.idle))
	}
	return r.r.Read(p)
}

// stream is the body of a streamed response: fasthttp's server reads it
// while it writes the response, writing each read as one flushed chunk,
// and closes it when the response ends or the client is gone. Reads run on
// the connection's goroutine; only cut (shutdown) comes from another.
type stream struct {
	s    *Server
	ctx  *fasthttp.RequestCtx
	x    *exchange
	up   *fasthttp.Response
	body io.Reader
	// conn is the upstream connection: each read is bounded by idle.
	conn net.Conn
	idle time.Duration
	// client is the client connection: each chunk must be written within
	// write (the server's write timeout, per chunk rather than per response).
	client net.Conn
	write  time.Duration
	max    int64 // response body bound, 0: none

	sent, last int64 // bytes handed to the server; the last read's
	eof        bool
	err        error // why the upstream side stopped before its end
	cut        atomic.Bool
	armed      bool // the handler returned: Close records the exchange
	closed     bool
	ttfb       time.Duration
	total      time.Duration
	status     int

	// settle: the exchange's reservations are settled as the stream ends,
	// from the costs its events carry (ssecost.go; nil: none scanned).
	settle bool
	costs  []*sseCost
}

func (st *stream) Read(p []byte) (int, error) {
	if st.closed {
		return 0, io.EOF
	}
	if st.cut.Load() {
		st.err = errShutdown
		return 0, st.err
	}
	if st.conn != nil {
		_ = st.conn.SetReadDeadline(time.Now().Add(st.idle))
	}
	n, err := st.body.Read(p)
	if st.max > 0 && st.sent+int64(n) > st.max {
		st.err = errStreamTooLarge
		return 0, st.err
	}
	st.sent += int64(n)
	st.last = int64(n)
	for _, c := range st.costs {
		if c != nil {
			c.feed(p[:n])
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		st.eof = true
	case err != nil && st.cut.Load():
		st.err = errShutdown
	case err != nil:
		st.err = err
	}
	if n > 0 && st.client != nil {
		_ = st.client.SetWriteDeadline(time.Now().Add(st.write))
	}
	return n, err
}

// Close is io.Closer for readers that do not see the write error.
func (st *stream) Close() error { return st.CloseWithError(nil) }

// CloseWithError ends the stream: werr is the server's error writing the
// response (nil when it was written). A stream closed before the
// upstream's end closes the upstream connection, cancelling the request
// there.
func (st *stream) CloseWithError(werr error) error {
	if st.closed {
		return nil
	}
	st.closed = true
	st.total = time.Since(st.x.start)
	st.status = st.ctx.Response.StatusCode()
	switch {
	case st.err != nil:
		st.status = streamError(st.err).Status
		if errors.Is(st.err, errShutdown) {
			st.status = fasthttp.StatusServiceUnavailable
		}
	case werr != nil || !st.eof:
		st.status = StatusClientClosed
		if werr != nil {
			st.sent -= st.last // the chunk being written did not arrive whole
		}
	}
	st.s.m.streamEnded(st.status, st.sent)
	if st.err != nil && !errors.Is(st.err, errShutdown) {
		st.s.warn(st.err, "streamed response cut")
	}
	st.s.streams.remove(st)
	closeUpstream(st.up)
	st.up = nil
	if st.settle {
		st.s.settleStream(st.ctx, st.x, st.costs)
	}
	if st.armed {
		x := st.x
		st.s.record(st.ctx, x)
		st.s.release(x)
	}
	return nil
}

// handOff is called as the handler returns: when the stream is still live
// it owns the exchange from then on and records it when it ends (true).
func (st *stream) handOff() bool {
	if st == nil || st.closed {
		return false
	}
	st.armed, st.ttfb = true, time.Since(st.x.start)
	return true
}

// streamed reports whether x is a streamed exchange its stream records.
func (x *exchange) streamed() bool { return x.stream != nil && x.stream.armed }

// bytesOut is the response body size of the usage event: counted by the
// stream of a streamed exchange (its body is not in memory).
func bytesOut(ctx *fasthttp.RequestCtx, x *exchange) int64 {
	if x.streamed() {
		return x.stream.sent
	}
	return int64(len(ctx.Response.Body()))
}

// outcome is the status and latency recorded for a streamed exchange: the
// status of how it ended (StatusClientClosed when the client left, 504 for
// an upstream idle past its timeout, 502 for a broken or oversized upstream
// body) and the time to its first byte.
func (st *stream) outcome() (int, time.Duration) { return st.status, st.ttfb }

// fill completes the usage event of a streamed exchange.
func (st *stream) fill(e *usage.Event) {
	e.BytesOut = st.sent
	e.Duration = st.total.Microseconds()
}

// streamSet holds the live streamed responses, to cut them at shutdown.
type streamSet struct {
	mu  sync.Mutex
	set map[*stream]struct{}
}

func (ss *streamSet) add(st *stream) {
	ss.mu.Lock()
	if ss.set == nil {
		ss.set = map[*stream]struct{}{}
	}
	ss.set[st] = struct{}{}
	ss.mu.Unlock()
}

func (ss *streamSet) remove(st *stream) {
	ss.mu.Lock()
	delete(ss.set, st)
	ss.mu.Unlock()
}

// cutAll ends every live stream: a blocked upstream read returns at once
// (its deadline is moved to now) and the next one fails.
func (ss *streamSet) cutAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for st := range ss.set {
		st.cut.Store(true)
		if st.conn != nil {
			_ = st.conn.SetReadDeadline(time.Now())
		}
	}
}
