package server

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
)

// Defaults of Options.UpgradeIdleTimeout and Options.UpgradeMaxLifetime.
const (
	DefaultUpgradeIdleTimeout = 5 * time.Minute
	DefaultUpgradeMaxLifetime = 24 * time.Hour
)

// Errors of upgrade requests.
var (
	ErrUpgradeRefused = newError(fasthttp.StatusBadRequest, "upgrade_not_allowed",
		"this API does not accept this Upgrade: only a GET with \"Connection: upgrade\" and an Upgrade the API allows")
	ErrShuttingDown = newError(fasthttp.StatusServiceUnavailable, "shutting_down", "the gateway is shutting down, try another node")
)

var strUpgrade = []byte("Upgrade")

// isUpgrade reports whether a request asks to switch protocols.
func isUpgrade(ctx *fasthttp.RequestCtx) bool {
	return len(ctx.Request.Header.PeekBytes(strUpgrade)) > 0
}

// forwardUpgrade is forward for a request carrying an Upgrade header. The
// API must allow its protocol (model.API.Upgrades), the request must be a
// GET without a body whose Connection names "upgrade"; anything else is
// refused with 400, before the upstream sees it. The handshake goes to one
// target on a connection of its own with the hop-by-hop headers the gateway
// sets itself (Connection: Upgrade, Upgrade: websocket). An upstream that
// answers 101 gets the client's connection spliced to its own (tunnel.run,
// after the server has written the 101); any other answer goes to the
// client as is, and the connection is closed.
func (s *Server) forwardUpgrade(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	h := &ctx.Request.Header
	cl := h.ContentLength() // -2: no body, -1: chunked
	if !x.api.AllowsUpgrade(h.PeekBytes(strUpgrade)) || !h.IsGet() || !h.ConnectionUpgrade() ||
		cl > 0 || cl == -1 || len(ctx.Request.Body()) > 0 {
		ctx.SetConnectionClose()
		return ErrUpgradeRefused
	}
	if s.tunnels.isClosing() {
		return ErrShuttingDown
	}
	if err := s.forwardHeaders(ctx, x); err != nil {
		return err
	}
	h.Set(fasthttp.HeaderConnection, "Upgrade")
	h.Set(fasthttp.HeaderUpgrade, "websocket")
	from := 0
	if x.api.StripListenPath {
		from = len(x.route.Prefix)
	}
	conn, br, err := x.api.Upstream.Upgrade(&ctx.Request, &ctx.Response, &x.target, from, 0)
	if err != nil {
		return s.upstreamError(ctx, err)
	}
	ctx.SetConnectionClose() // no other request follows an upgrade request
	if perr := proxy.StripResponse(&ctx.Response); perr != nil {
		s.warn(perr, "upstream upgrade answer refused")
		ctx.Response.Reset()
		if conn != nil {
			_ = conn.Close()
		}
		return ErrUpstreamDown
	}
	if conn == nil {
		return nil // the upstream refused: its answer is the response
	}
	ctx.Response.Header.ResetConnectionClose()
	ctx.Response.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	ctx.Response.Header.Set(fasthttp.HeaderUpgrade, "websocket")
	t := &tunnel{s: s, upstream: conn, upReader: br, api: x.api.ID, rest: string(x.rest)}
	if x.sess != nil && !x.token {
		t.key = x.sess.Hash
	}
	if !s.tunnels.add(t) {
		_ = conn.Close()
		ctx.Response.Reset()
		return ErrShuttingDown
	}
	// fasthttp runs t.run only once the 101 is written; if that fails, no
	// one would: the watchdog ends the tunnel then.
	wait := s.opts.WriteTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	t.watchdog = time.AfterFunc(wait+time.Second, t.abandon)
	if x.dec.HasLimit {
		x.dec.WriteHeaders(&ctx.Response.Header)
	}
	ctx.Hijack(t.run)
	return nil
}

// tunnel is one upgraded connection: the client's, spliced both ways to
// the upstream's. It ends when either side closes, when no byte has
// crossed it either way for the idle timeout, at its maximum lifetime, at
// shutdown, or when its key is revoked.
type tunnel struct {
	s        *Server
	upstream net.Conn
	upReader io.Reader // the upstream's bytes, some perhaps already read
	api      string
	rest     string // path relative to the listen path, for the recheck
	key      string // hex key hash; "" for keyless and token callers

	watchdog *time.Timer

	mu      sync.Mutex
	started bool
	client  net.Conn // the client's connection itself, to close it
	outcome string   // set once, by the first end
	last    atomic.Int64
}

// run splices the hijacked client connection c to the upstream; fasthttp
// closes c when run returns.
func (t *tunnel) run(c net.Conn) {
	t.watchdog.Stop()
	m := t.s.m.flow
	defer func() {
		t.mu.Lock()
		outcome := t.outcome
		t.mu.Unlock()
		m.upgrades.WithLabelValues(outcome).Inc()
		t.s.tunnels.remove(t)
	}()
	t.mu.Lock()
	t.started = true
	t.client = c
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		t.client = u.UnsafeConn() // fasthttp's wrapper does not close
	}
	ended := t.outcome != ""
	t.mu.Unlock()
	if ended {
		_ = t.upstream.Close()
		return
	}
	t.last.Store(time.Now().UnixNano())
	life := time.AfterFunc(t.s.opts.UpgradeMaxLifetime, func() { t.end("lifetime") })
	defer life.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pipe(t.upstream, c, c, m.tunnelBytes.WithLabelValues("upstream"))
	}()
	t.pipe(c, t.upReader, t.upstream, m.tunnelBytes.WithLabelValues("downstream"))
	<-done
	t.end("closed")
}

// abandon ends a tunnel whose run never started (the 101 could not be
// written to the client).
func (t *tunnel) abandon() {
	t.mu.Lock()
	started := t.started
	t.mu.Unlock()
	if started {
		return
	}
	t.end("closed")
	t.s.m.flow.upgrades.WithLabelValues("closed").Inc()
	t.s.tunnels.remove(t)
}

// pipe copies src (read from srcConn) to dst until either fails, then ends
// the tunnel. A read that times out ends it only when nothing crossed in
// either direction for the idle timeout.
func (t *tunnel) pipe(dst net.Conn, src io.Reader, srcConn net.Conn, bytes interface{ Add(float64) }) {
	idle := t.s.opts.UpgradeIdleTimeout
	buf := make([]byte, 32<<10)
	for {
		_ = srcConn.SetReadDeadline(time.Now().Add(idle))
		n, err := src.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			_ = dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				t.end("closed")
				return
			}
			bytes.Add(float64(n))
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !t.ended() {
			if time.Since(time.Unix(0, t.last.Load())) < idle {
				continue
			}
			t.end("idle")
			return
		}
		t.end("closed")
		return
	}
}

func (t *tunnel) ended() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.outcome != ""
}

// end closes both connections, once, recording why.
func (t *tunnel) end(outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.outcome != "" {
		return
	}
	t.outcome = outcome
	_ = t.upstream.Close()
	if t.client != nil {
		_ = t.client.Close()
	}
}

// tunnelSet holds the live tunnels, by key hash too, for shutdown and
// revocation.
type tunnelSet struct {
	mu      sync.Mutex
	all     map[*tunnel]struct{}
	byKey   map[string]map[*tunnel]struct{}
	closing bool
	gauge   interface{ Add(float64) }
	wg      sync.WaitGroup
}

func (ts *tunnelSet) add(t *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closing {
		return false
	}
	if ts.all == nil {
		ts.all, ts.byKey = map[*tunnel]struct{}{}, map[string]map[*tunnel]struct{}{}
	}
	ts.all[t] = struct{}{}
	if t.key != "" {
		if ts.byKey[t.key] == nil {
			ts.byKey[t.key] = map[*tunnel]struct{}{}
		}
		ts.byKey[t.key][t] = struct{}{}
	}
	ts.wg.Add(1)
	ts.gauge.Add(1)
	return true
}

func (ts *tunnelSet) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.all[t]; !ok {
		return
	}
	delete(ts.all, t)
	if k := ts.byKey[t.key]; k != nil {
		delete(k, t)
		if len(k) == 0 {
			delete(ts.byKey, t.key)
		}
	}
	ts.gauge.Add(-1)
	ts.wg.Done()
}

func (ts *tunnelSet) isClosing() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.closing
}

// ofKeys returns the tunnels opened with any of the key hashes.
func (ts *tunnelSet) ofKeys(hashes []string) []*tunnel {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []*tunnel
	for _, h := range hashes {
		for t := range ts.byKey[h] {
			out = append(out, t)
		}
	}
	return out
}

// shutdown ends every tunnel and refuses new ones, then waits until their
// goroutines are done or ctx ends.
func (ts *tunnelSet) shutdown(ctx context.Context) error {
	ts.mu.Lock()
	ts.closing = true
	list := make([]*tunnel, 0, len(ts.all))
	for t := range ts.all {
		list = append(list, t)
	}
	ts.mu.Unlock()
	for _, t := range list {
		t.end("shutdown")
	}
	done := make(chan struct{})
	go func() { ts.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keysEvicted is called by the state when config sync evicts the sessions
// of keys (a key changed, was disabled or deleted). Tunnels opened with
// those keys are checked again in the background, as a new handshake
// would be: closed when the key is gone, unusable, or no longer allowed
// the API. A key that cannot be read (store down) keeps its tunnels.
func (s *Server) keysEvicted(hashes []string) {
	list := s.tunnels.ofKeys(hashes)
	if len(list) == 0 {
		return
	}
	go func() {
		for _, t := range list {
			s.recheck(t)
		}
	}()
}

func (s *Server) recheck(t *tunnel) {
	var sum auth.Sum
	if _, err := hex.Decode(sum[:], []byte(t.key)); err != nil {
		return
	}
	sess, err := s.state.Sessions().Lookup(s.base, sum)
	switch {
	case errors.Is(err, auth.ErrUnknownKey):
	case err != nil:
		return
	case sess.Usable(time.Now()) == nil && sess.Allowed(t.api, []byte(fasthttp.MethodGet), []byte(t.rest)):
		return
	}
	t.end("revoked")
}
