// Package server is the gateway's traffic listener: a fasthttp.Server whose
// handler (handler.go) runs the request path stage by stage.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/clientip"
	"github.com/sluicegw/sluice/gateway/internal/edgetls"
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/pkg/usage"
)

// Limiter decides rate limits and quotas (internal/limit.Limiter).
type Limiter interface {
	Check(ctx context.Context, req *limit.Request, d *limit.Decision)
	// Settle settles the reservations of an allowed decision at each
	// reserving rule's Actual (limit.SettleFailed: give back).
	Settle(req *limit.Request, d *limit.Decision)
}

// forgetter is a Limiter that holds per-API state (limit.Limiter).
type forgetter interface{ Forget(api string) }

// apisRemoved releases the per-API state of APIs deleted from the config:
// metric series and the limiter's queues, leases and fallback counters.
func (s *Server) apisRemoved(ids []string) {
	f, _ := s.limiter.(forgetter)
	for _, id := range ids {
		s.m.forget(id)
		if f != nil {
			f.Forget(id)
		}
	}
}

// Emitter takes usage events without blocking (internal/emitter.Publisher).
// Emit must not keep e, or the bytes its strings view, after it returns:
// Path and RequestID view the request's buffers, reused by the next
// request (internal/emitter encodes the event before returning).
type Emitter interface {
	Emit(e *usage.Event) bool
}

// Options configure the traffic listener.
type Options struct {
	Listen string // plain HTTP; empty: no plain listener
	Node   string
	// TLS configures the HTTPS listener (TLS.Listen; empty: none). The
	// two listeners serve the same handler.
	TLS edgetls.Options
	// MaxHeaderBytes bounds the request line and headers (431 past it).
	MaxHeaderBytes int
	// MaxBodyBytes bounds request bodies (413 past it).
	MaxBodyBytes int
	// RequestBufferBytes: a request body up to this size is read whole
	// before the request is judged; a larger one streams to the upstream
	// once judged (upload.go; default DefaultRequestBufferBytes).
	RequestBufferBytes int
	// MinBodyRate is the slowest a streamed request body may arrive, in
	// bytes per second averaged from one ReadTimeout after it began (0:
	// no minimum; each wait is still bounded by ReadTimeout).
	MinBodyRate int64
	// MinKeyLength: shorter API keys are refused without a store lookup.
	MinKeyLength int
	// ReadTimeout and WriteTimeout bound reading a client request and
	// writing its response; IdleTimeout closes idle keep-alive connections.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Forwarding sets the headers that tell upstreams about the client
	// (the zero value is the default).
	Forwarding proxy.Forwarding
	// UpgradeIdleTimeout closes an upgraded (WebSocket) connection when no
	// byte crossed it either way for this long; UpgradeMaxLifetime closes
	// it at this age (defaults DefaultUpgradeIdleTimeout,
	// DefaultUpgradeMaxLifetime).
	UpgradeIdleTimeout, UpgradeMaxLifetime time.Duration
	// RequestIDHeader names the request id header taken from clients,
	// passed to the upstream and returned (default X-Request-ID).
	RequestIDHeader string
	// AccessLog configures the access log (off by default).
	AccessLog AccessLogOptions
	// ClientIP finds the client address limit_by client_ip counts (nil:
	// the connection's peer).
	ClientIP *clientip.Resolver
	// Tracing traces requests (tracing.go); nil: off.
	Tracing *tracing.Provider
}

// Server is the traffic listener of a node.
type Server struct {
	opts    Options
	state   *state.State
	limiter Limiter
	usage   Emitter
	log     zerolog.Logger
	m       *metrics
	rid     *requestIDs
	tracer  tracer
	access  *accessLog // nil when off
	srv     *fasthttp.Server
	ln      net.Listener
	pool    sync.Pool // *exchange
	streams streamSet // live streamed responses (stream.go)
	tunnels tunnelSet // live upgraded connections (upgrade.go)
	// base is the parent context of store calls made for requests; it is
	// cancelled once in-flight requests have drained.
	base       context.Context
	cancelBase context.CancelFunc
	served     sync.WaitGroup
	lastWarn   atomic.Int64
	// lastTokenLog paces the log of refused tokens apart from warnings, so
	// a flood of bad tokens hides no store or upstream trouble.
	lastTokenLog atomic.Int64

	// tlsLn is the HTTPS listener, served with edge's certificates; both
	// are nil without HTTPS (as ln, above, is nil without plain HTTP).
	tlsLn   net.Listener
	edge    *edgetls.Edge
	started bool
}

// New builds the traffic server; Start listens.
func New(opts Options, st *state.State, lim Limiter, em Emitter, reg prometheus.Registerer, log zerolog.Logger) (*Server, error) {
	if opts.MinKeyLength <= 0 || opts.MaxBodyBytes <= 0 || opts.MaxHeaderBytes <= 0 {
		return nil, errors.New("server: min key length, max body and max header bytes must be positive")
	}
	if opts.Listen == "" && !opts.TLS.Enabled() {
		return nil, errors.New("server: no listener: set listen, tls.listen or both")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	s := &Server{
		opts: opts, state: st, limiter: lim, usage: em, m: m, rid: newRequestIDs(opts.RequestIDHeader),
		tracer: newTracer(opts.Tracing),
		log:    log.With().Str("component", "gateway.server").Logger(),
	}
	if opts.TLS.Enabled() {
		if s.edge, err = edgetls.New(opts.TLS, reg, log); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	if s.opts.RequestBufferBytes <= 0 {
		s.opts.RequestBufferBytes = DefaultRequestBufferBytes
	}
	if s.opts.UpgradeIdleTimeout <= 0 {
		s.opts.UpgradeIdleTimeout = DefaultUpgradeIdleTimeout
	}
	if s.opts.UpgradeMaxLifetime <= 0 {
		s.opts.UpgradeMaxLifetime = DefaultUpgradeMaxLifetime
	}
	s.tunnels.gauge = m.flow.upgraded
	if st != nil {
		st.OnKeysEvicted(s.keysEvicted)
		st.OnAPIsRemoved(s.apisRemoved)
	}
	s.pool.New = func() any { return new(exchange) }
	if s.access, err = newAccessLog(opts.AccessLog, func(n int) { m.accessDropped.Add(float64(n)) }); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       errorHandler,
		ExpectHandler:      s.expect,
		ReadBufferSize:     opts.MaxHeaderBytes,
		MaxRequestBodySize: opts.MaxBodyBytes,
		// Bodies are read by the handler (readBody, upload.go): whole when
		// small, else streamed once judged; byte for byte, never parsed as a
		// multipart form.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  opts.ReadTimeout,
		WriteTimeout:                 opts.WriteTimeout,
		IdleTimeout:                  opts.IdleTimeout,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		NoDefaultDate:                false,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{s.log},
	}
	return s, nil
}

// Start listens on Options.Listen (plain HTTP) and Options.TLS.Listen
// (HTTPS), each when set, and serves both in the background. The HTTPS
// listener's certificates are reloaded when their files change.
func (s *Server) Start(ctx context.Context) error {
	if s.opts.Listen != "" {
		ln, err := net.Listen("tcp", s.opts.Listen)
		if err != nil {
			return fmt.Errorf("server: listen %s: %w", s.opts.Listen, err)
		}
		s.ln = ln
	}
	if s.edge != nil {
		ln, err := net.Listen("tcp", s.opts.TLS.Listen)
		if err != nil {
			if s.ln != nil {
				_ = s.ln.Close()
				s.ln = nil
			}
			return fmt.Errorf("server: listen tls %s: %w", s.opts.TLS.Listen, err)
		}
		s.tlsLn = s.edge.NewListener(ln)
		_ = s.edge.Start(ctx)
	}
	s.started = true
	for _, l := range []struct {
		ln     net.Listener
		scheme string
	}{{s.ln, "http"}, {s.tlsLn, "https"}} {
		if l.ln == nil {
			continue
		}
		s.served.Add(1)
		go func(ln net.Listener, scheme string) {
			defer s.served.Done()
			if err := s.srv.Serve(guardedListener{Listener: ln, maxLine: s.opts.MaxHeaderBytes, maxBody: s.opts.MaxBodyBytes}); err != nil {
				s.log.Error().Err(err).Str("scheme", scheme).Msg("traffic listener stopped")
			}
		}(l.ln, l.scheme)
		s.log.Info().Str("addr", l.ln.Addr().String()).Str("scheme", l.scheme).Msg("serving traffic")
	}
	return nil
}

// expect answers a request carrying `Expect: 100-continue` before its body
// is read: refused framing gets its 400, and a declared body above
// MaxBodyBytes 413, each without a 100 Continue (RFC 9110 section 10.1.1)
// and with the connection closed (fasthttp closes it, as the client may be
// sending the body already). fasthttp does not run the handler for a
// refused request, so the JSON answer is written here (fasthttp's doc asks
// not to modify the response; it only sets the status on top of it, and the
// conformance suite checks that the JSON body arrives).
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	if err := checkFraming(ctx); err != nil {
		writeError(ctx, err)
		return err.Status
	}
	if ctx.Request.Header.ContentLength() > s.opts.MaxBodyBytes {
		writeError(ctx, ErrBodyTooLarge)
		return ErrBodyTooLarge.Status
	}
	return fasthttp.StatusContinue
}

// Addr is the plain HTTP address listened on (after Start), "" when off.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// TLSAddr is the HTTPS address listened on (after Start), "" when off.
func (s *Server) TLSAddr() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

// TLS is the HTTPS listener's certificate set (nil without HTTPS).
func (s *Server) TLS() *edgetls.Edge { return s.edge }

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.cancelBase()
	if s.access != nil {
		defer s.access.Close()
	}
	if !s.started {
		return nil
	}
	if s.edge != nil {
		defer func() { _ = s.edge.Shutdown(ctx) }()
	}
	terr := s.tunnels.shutdown(ctx) // hijacked: the server does not track them
	err := s.srv.ShutdownWithContext(ctx)
	if err == nil {
		err = terr
	}
	if err != nil {
		s.streams.cutAll() // streams still running at the deadline end now
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.served.Wait()
	return nil
}

// warn logs at most one warning per second: on the hot path errors come in
// floods.
func (s *Server) warn(err error, msg string) {
	s.logEvery(&s.lastWarn, zerolog.WarnLevel, nil, err, msg)
}

// warnFor is warn about a request: the line carries its request id.
func (s *Server) warnFor(x *exchange, err error, msg string) {
	s.logEvery(&s.lastWarn, zerolog.WarnLevel, x.rid, err, msg)
}

// logEvery logs err at level unless last says one was logged less than a
// second ago. Errors logged here never carry credentials. A request's
// line carries its request id (rid, empty for none).
func (s *Server) logEvery(last *atomic.Int64, level zerolog.Level, rid []byte, err error, msg string) {
	now := time.Now().UnixNano()
	prev := last.Load()
	if now-prev < int64(time.Second) || !last.CompareAndSwap(prev, now) {
		return
	}
	e := s.log.WithLevel(level).Err(err)
	if len(rid) > 0 {
		e = e.Bytes("request_id", rid)
	}
	e.Msg(msg)
}

type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) { l.log.Debug().Msgf(format, args...) }
