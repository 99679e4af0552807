// Package proxy forwards requests to an API's upstream targets: one pooled
// fasthttp.HostClient per target, round robin over the targets, skipping
// for a short while a target that refused or timed out a connection.
// Requests and responses are forwarded in place (Do(&ctx.Request,
// &ctx.Response)), bodies are never copied.
package proxy

import (
	"bytes"
	cryptotls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/reqpath"
	"github.com/sluicegw/sluice/pkg/model"
)

// Errors Do returns; the server maps them to 502 and 504.
var (
	ErrUpstreamDown    = errors.New("upstream unavailable")
	ErrUpstreamTimeout = errors.New("upstream timed out")
)

// DefaultConnectTimeout applies when neither the API nor the gateway sets one.
const DefaultConnectTimeout = 2 * time.Second

// Options are the gateway-wide defaults for upstream clients; an API's own
// timeouts win when set.
type Options struct {
	ConnectTimeout  time.Duration
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	MaxConnsPerHost int
	// MaxResponseBodySize bounds upstream response bodies (0: unbounded).
	MaxResponseBodySize int
	// DownFor is how long a target that refused a connection is skipped
	// (default 1s).
	DownFor time.Duration
}

// Upstream is the client of one API's targets. It is safe for concurrent
// use and is reused across config snapshots while its config is unchanged.
type Upstream struct {
	cfg     model.Upstream
	opts    Options // as given, to compare in Same
	downFor time.Duration
	targets []*target
	next    atomic.Uint64
}

type target struct {
	hc *fasthttp.HostClient
	// shc streams response bodies (DoStream); idle until an API streams.
	shc       *fasthttp.HostClient
	addr      string // host:port dialled
	tls       bool
	tlsCfg    *cryptotls.Config // nil: crypto/tls defaults
	connect   time.Duration
	host      string // Host header sent upstream
	scheme    string // the target's: a request read over TLS says "https"
	base      []byte // path of the target URL in normal form, without trailing "/"
	downUntil atomic.Int64
}

// dialError marks errors of establishing a connection: the request was not
// sent, so another target may be tried.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// New builds the client of an upstream.
func New(u model.Upstream, opts Options) (*Upstream, error) {
	if len(u.Targets) == 0 {
		return nil, errors.New("proxy: no upstream targets")
	}
	up := &Upstream{cfg: u, opts: opts}
	if u.TLS != nil {
		t := *u.TLS
		up.cfg.TLS = &t
	}
	if opts.DownFor <= 0 {
		opts.DownFor = time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	up.downFor = opts.DownFor
	up.cfg.Targets = slices.Clone(u.Targets)
	connect := pick(u.ConnectTimeout.D(), opts.ConnectTimeout)
	tlsCfg, err := clientTLS(u.TLS)
	if err != nil {
		return nil, err
	}
	for _, raw := range u.Targets {
		tu, err := url.Parse(raw)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") || tu.Host == "" {
			return nil, fmt.Errorf("proxy: target %q is not an http(s) URL", raw)
		}
		base, err := targetBase(tu)
		if err != nil {
			return nil, fmt.Errorf("proxy: target %q: %w", raw, err)
		}
		tls := tu.Scheme == "https"
		addr := tu.Host
		if tu.Port() == "" {
			addr = net.JoinHostPort(tu.Hostname(), map[bool]string{true: "443", false: "80"}[tls])
		}
		hc := hostClient(addr, tls, tlsCfg, u, opts, connect, false)
		shc := hostClient(addr, tls, tlsCfg, u, opts, connect, true)
		up.targets = append(up.targets, &target{hc: hc, shc: shc, host: tu.Host, scheme: tu.Scheme, base: base,
			tls: tls, tlsCfg: tlsCfg, addr: addr, connect: connect})
	}
	return up, nil
}

// hostClient builds the client of one target. A streaming client hands
// response bodies over unread (Response.BodyStream) on connections that
// DoStream's caller can reach (StreamConn) to bound each read; it has no
// response body bound of its own: the caller counts. It also sends the
// requests whose body streams (Request.SetBodyStream): its write timeout
// bounds each write to the connection, not the whole request.
func hostClient(addr string, tls bool, tlsCfg *cryptotls.Config, u model.Upstream, opts Options, connect time.Duration, stream bool) *fasthttp.HostClient {
	hc := &fasthttp.HostClient{
		Addr:                          addr,
		IsTLS:                         tls,
		TLSConfig:                     tlsCfg,
		MaxConns:                      opts.MaxConnsPerHost,
		ReadTimeout:                   pick(u.ReadTimeout.D(), opts.ReadTimeout),
		WriteTimeout:                  pick(u.WriteTimeout.D(), opts.WriteTimeout),
		MaxResponseBodySize:           opts.MaxResponseBodySize,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		MaxIdleConnDuration:           30 * time.Second,
		// The path is sent as reqpath escaped it, byte for byte.
		DisablePathNormalizing: true,
		Dial: func(addr string) (net.Conn, error) {
			c, err := fasthttp.DialTimeout(addr, connect)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		RetryIfErr: retryStaleConn,
	}
	if stream {
		// The write timeout bounds each write rather than the whole
		// request: a streamed request body may take longer than it.
		write := hc.WriteTimeout
		hc.StreamResponseBody = true
		hc.MaxResponseBodySize = 0
		hc.WriteTimeout = 0
		hc.Dial = func(addr string) (net.Conn, error) {
			c, err := fasthttp.DialTimeout(addr, connect)
			if err != nil {
				return nil, &dialError{err}
			}
			return newStreamConn(c, write), nil
		}
	}
	return hc
}

// targetBase is the path of a target URL in the normal form of request
// paths, without its trailing "/". Joined with a normal path, it gives a
// normal path under it: the request cannot climb out of it.
func targetBase(tu *url.URL) ([]byte, error) {
	raw := tu.EscapedPath()
	if raw == "" || raw == "/" {
		return nil, nil
	}
	var p reqpath.Path
	if err := p.Parse([]byte(raw)); err != nil {
		return nil, fmt.Errorf("url path: %w", err)
	}
	return bytes.TrimRight(p.Escaped(), "/"), nil
}

func pick(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// retryStaleConn retries an idempotent request once on a fresh connection
// when a pooled keep-alive connection turned out to be closed.
func retryStaleConn(req *fasthttp.Request, attempts int, err error) (bool, bool) {
	stale := errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed)
	return false, stale && attempts < 2 && (req.Header.IsGet() || req.Header.IsHead())
}

// Same reports whether u was built from the config cfg and opts, so it can
// be reused.
func (u *Upstream) Same(cfg model.Upstream, opts Options) bool {
	return u.opts == opts && slices.Equal(u.cfg.Targets, cfg.Targets) &&
		u.cfg.ConnectTimeout == cfg.ConnectTimeout && u.cfg.ReadTimeout == cfg.ReadTimeout &&
		u.cfg.WriteTimeout == cfg.WriteTimeout && sameTLS(u.cfg.TLS, cfg.TLS)
}

// Do forwards req to one target and reads the answer into resp. The path
// sent is the target URL's path joined with path's escaped form after its
// first from bytes (decoded; 0 forwards it whole, the listen path's length
// strips it): exactly those bytes, never decoded or re-encoded again. A target that refuses the
// connection (or does not accept it in time) is marked down and the next
// one is tried; down targets are skipped while others are up. It returns
// ErrUpstreamDown or ErrUpstreamTimeout wrapping the cause.
func (u *Upstream) Do(req *fasthttp.Request, resp *fasthttp.Response, path *reqpath.Path, from int) error {
	return u.roundTrip(req, resp, path, from, false)
}

func (u *Upstream) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, path *reqpath.Path, from int, stream bool) error {
	n := len(u.targets)
	start := int(u.next.Add(1) % uint64(n))
	now := time.Now().UnixNano()
	var lastErr error
	tried := 0
	// First pass: targets that are up; second pass: the rest, so a request
	// is still tried when every target was marked down.
	for pass := 0; pass < 2 && tried < n; pass++ {
		for i := 0; i < n; i++ {
			t := u.targets[(start+i)%n]
			if down := t.downUntil.Load() > now; down != (pass == 1) {
				continue
			}
			tried++
			err := t.do(req, resp, path.EscapedRest(from), stream)
			if err == nil {
				return nil
			}
			lastErr = err
			var de *dialError
			if !errors.As(err, &de) {
				return classify(err)
			}
			t.downUntil.Store(time.Now().Add(u.downFor).UnixNano())
		}
	}
	return classify(lastErr)
}

func (t *target) do(req *fasthttp.Request, resp *fasthttp.Response, path []byte, stream bool) error {
	t.setURI(req, path)
	if stream {
		return t.shc.Do(req, resp)
	}
	return t.hc.Do(req, resp)
}

// setURI points req at the target: its host, and its base path joined with
// path.
func (t *target) setURI(req *fasthttp.Request, path []byte) {
	uri := req.URI()
	if len(t.base) > 0 {
		var buf [512]byte
		p := append(append(buf[:0], t.base...), path...)
		uri.SetPathBytes(p)
	} else {
		uri.SetPathBytes(path)
	}
	uri.SetHost(t.host)
	uri.SetScheme(t.scheme) // HostClient refuses a scheme other than its own
}

func classify(err error) error {
	var ne net.Error
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w", ErrUpstreamTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUpstreamDown, err)
}

// Close closes the idle connections of every target.
func (u *Upstream) Close() {
	for _, t := range u.targets {
		t.hc.CloseIdleConnections()
		t.shc.CloseIdleConnections()
	}
}
