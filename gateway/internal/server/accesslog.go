package server

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Access log modes.
const (
	AccessLogOff     = "off"     // no access log (default)
	AccessLogErrors  = "errors"  // responses with status >= 400
	AccessLogSampled = "sampled" // every error, and one in Sample of the rest
	AccessLogAll     = "all"     // every request
)

// AccessLogOptions configure the access log: one JSON line per request.
type AccessLogOptions struct {
	// Mode is off (default), errors, sampled or all.
	Mode string `yaml:"mode"`
	// Sample: in mode sampled, one in Sample successful requests is logged
	// (default 100).
	Sample int `yaml:"sample"`
	// Path is stdout (default), stderr or a file, opened once for append.
	Path string `yaml:"path"`
	// Query keeps the query string in the logged path (default false: it
	// may carry personal data or, on APIs reading a key from the query,
	// is stripped of it but still not needed).
	Query bool `yaml:"query"`
}

// WithDefaults fills the unset fields.
func (o AccessLogOptions) WithDefaults() AccessLogOptions {
	if o.Mode == "" {
		o.Mode = AccessLogOff
	}
	if o.Sample == 0 {
		o.Sample = 100
	}
	if o.Path == "" {
		o.Path = "stdout"
	}
	return o
}

// Validate returns every problem, each with its field path.
func (o AccessLogOptions) Validate() validation.Errors {
	var errs validation.Errors
	switch o.Mode {
	case AccessLogOff, AccessLogErrors, AccessLogSampled, AccessLogAll:
	default:
		errs.Add("mode", "must be off, errors, sampled or all, got %q", o.Mode)
	}
	if o.Sample < 1 {
		errs.Add("sample", "must be at least 1 (one in sample requests is logged)")
	}
	if o.Path == "" {
		errs.Add("path", "must be stdout, stderr or a file path")
	}
	return errs
}

// accessLogQueue is how many lines wait for the writer before new ones are
// dropped (counted in sluice_access_log_dropped_total): the request path
// never waits on the log's disk or pipe.
const accessLogQueue = 8192

// accessLog writes one line per logged request: zerolog formats it into a
// pooled buffer, queued without blocking to one writer goroutine that
// writes through a 64 KiB buffer, flushed when the queue is empty (at most
// every 200ms under steady load).
type accessLog struct {
	mode   string
	sample uint64
	query  bool
	n      atomic.Uint64
	log    zerolog.Logger
	q      *lineQueue
	closed sync.Once
}

// newAccessLog opens the access log; nil when off.
func newAccessLog(o AccessLogOptions, dropped func(int)) (*accessLog, error) {
	o = o.WithDefaults()
	if errs := o.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("access_log: %w", errs)
	}
	if o.Mode == AccessLogOff {
		return nil, nil
	}
	var w io.Writer
	var c io.Closer
	switch o.Path {
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("access_log.path: %w", err)
		}
		w, c = f, f
	}
	a := &accessLog{mode: o.Mode, sample: uint64(o.Sample), query: o.Query}
	a.q = newLineQueue(w, c, dropped)
	a.log = zerolog.New(a.q)
	return a, nil
}

// want says whether a request with this status is logged.
func (a *accessLog) want(status int) bool {
	switch a.mode {
	case AccessLogAll:
		return true
	case AccessLogErrors:
		return status >= 400
	default: // sampled
		return status >= 400 || a.n.Add(1)%a.sample == 0
	}
}

// write logs x. No key, no token and no credential is ever logged: the
// session's key id ("jwt" for a token identity) names the caller.
func (a *accessLog) write(ctx *fasthttp.RequestCtx, x *exchange, node string, status int, lat time.Duration) {
	if !a.want(status) {
		return
	}
	e := a.log.Log().Time("time", x.start).Str("node", node)
	if x.api != nil {
		e = e.Str("api", x.api.ID)
	}
	if x.endpoint != nil {
		e = e.Str("endpoint", x.endpoint.Pattern.String())
	}
	e = e.Bytes("method", ctx.Method())
	if x.path != nil {
		e = e.Bytes("path", x.path)
	} else {
		e = e.Bytes("path", rawPath(ctx.Request.Header.RequestURI()))
	}
	if q := a.queryOf(ctx, x); len(q) > 0 {
		e = e.Bytes("query", q)
	}
	e = e.Int("status", status).Int64("latency_us", lat.Microseconds())
	if x.upstream > 0 {
		e = e.Int64("upstream_us", x.upstream.Microseconds())
	}
	e = e.Int64("bytes_in", bytesIn(ctx, x)).Int64("bytes_out", bytesOut(ctx, x))
	if x.sess != nil {
		e = e.Str("key_id", x.sess.KeyID)
	}
	e = e.IPAddr("client_ip", ctx.RemoteIP())
	if x.limited != "" {
		e = e.Str("limited", x.limited)
	}
	if x.err != nil {
		e = e.Str("error", x.err.Code)
	}
	e.Bytes("request_id", x.rid).Send()
}

// queryOf is the query to log: none unless the log keeps queries and an
// API matched, and never the API's key parameter (removed already from a
// request forwarded, not from a refused one).
func (a *accessLog) queryOf(ctx *fasthttp.RequestCtx, x *exchange) []byte {
	if !a.query || x.api == nil {
		return nil
	}
	args := ctx.URI().QueryArgs()
	if p := x.api.Auth.QueryParam; p != "" {
		auth.StripParam(args, p)
	}
	return args.QueryString()
}

// rawPath is the request-target of a request refused before its path was
// parsed, without its query and bounded: enough to recognise it.
func rawPath(uri []byte) []byte {
	for i, c := range uri {
		if c == '?' {
			uri = uri[:i]
			break
		}
	}
	if len(uri) > 256 {
		uri = uri[:256]
	}
	return uri
}

// Close drains the queue, flushes and closes the file.
func (a *accessLog) Close() error {
	var err error
	a.closed.Do(func() { err = a.q.Close() })
	return err
}

// lineQueue hands lines to one writer goroutine without ever blocking the
// caller: a full queue drops the line.
type lineQueue struct {
	lines   chan *[]byte
	pool    sync.Pool
	bw      *bufio.Writer
	closer  io.Closer
	dropped func(int)
	stop    chan struct{}
	done    chan struct{}
}

func newLineQueue(w io.Writer, c io.Closer, dropped func(int)) *lineQueue {
	if dropped == nil {
		dropped = func(int) {}
	}
	q := &lineQueue{
		lines: make(chan *[]byte, accessLogQueue), bw: bufio.NewWriterSize(w, 64<<10),
		closer: c, dropped: dropped, stop: make(chan struct{}), done: make(chan struct{}),
	}
	q.pool.New = func() any { b := make([]byte, 0, 512); return &b }
	go q.run()
	return q
}

// Write queues a copy of p (zerolog reuses p once Write returns).
func (q *lineQueue) Write(p []byte) (int, error) {
	b := q.pool.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	select {
	case q.lines <- b:
	default:
		q.pool.Put(b)
		q.dropped(1)
	}
	return len(p), nil
}

func (q *lineQueue) run() {
	defer close(q.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case b := <-q.lines:
			q.put(b)
			if len(q.lines) == 0 {
				_ = q.bw.Flush()
			}
		case <-t.C:
			_ = q.bw.Flush()
		case <-q.stop:
			for {
				select {
				case b := <-q.lines:
					q.put(b)
				default:
					return
				}
			}
		}
	}
}

func (q *lineQueue) put(b *[]byte) {
	_, _ = q.bw.Write(*b)
	if cap(*b) <= 64<<10 {
		q.pool.Put(b)
	}
}

// Close writes every queued line, flushes and closes the file. A line
// written later (a request outliving the shutdown deadline) stays queued,
// never written.
func (q *lineQueue) Close() error {
	close(q.stop)
	<-q.done
	err := q.bw.Flush()
	if q.closer != nil {
		if cerr := q.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// accessLog writes the request's access log line, if the log is on and
// its mode wants it.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, x *exchange, status int, lat time.Duration) {
	if s.access != nil {
		s.access.write(ctx, x, s.opts.Node, status, lat)
	}
}
