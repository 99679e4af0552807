package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/reqpath"
)

// Upgrade sends an upgrade request (a WebSocket handshake) to one target
// over a connection of its own, never pooled, and reads the answer into
// resp (its body too, when it is not 101 Switching Protocols; at most
// MaxResponseBody bytes). On 101 the caller owns conn and must read what
// follows from br (it may hold bytes the upstream sent after its answer);
// otherwise conn is already closed. The request's path is set as Do sets
// it; the caller sets the Connection and Upgrade headers. timeout bounds
// the whole handshake (0: the upstream's read timeout, or 10s).
func (u *Upstream) Upgrade(req *fasthttp.Request, resp *fasthttp.Response, path *reqpath.Path, from int, timeout time.Duration) (net.Conn, *bufio.Reader, error) {
	n := len(u.targets)
	start := int(u.next.Add(1) % uint64(n))
	now := time.Now().UnixNano()
	var t *target
	for i := 0; i < n && t == nil; i++ {
		if c := u.targets[(start+i)%n]; c.downUntil.Load() <= now {
			t = c
		}
	}
	if t == nil {
		t = u.targets[start]
	}
	if timeout <= 0 {
		timeout = pick(u.cfg.ReadTimeout.D(), pick(u.opts.ReadTimeout, 10*time.Second))
	}
	t.setURI(req, path.EscapedRest(from))
	conn, err := t.dial()
	if err != nil {
		t.downUntil.Store(time.Now().Add(u.downFor).UnixNano())
		return nil, nil, classify(err)
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	bw := bufio.NewWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, classify(err)
	}
	br := bufio.NewReader(conn)
	resp.Header.DisableNormalizing()
	if err := resp.ReadLimitBody(br, u.opts.MaxResponseBodySize); err != nil {
		_ = conn.Close()
		return nil, nil, classify(err)
	}
	if resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		_ = conn.Close()
		return nil, nil, nil
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

// dial opens a connection of its own to the target (TLS for https).
func (t *target) dial() (net.Conn, error) {
	c, err := fasthttp.DialTimeout(t.addr, t.connect)
	if err != nil {
		return nil, err
	}
	if !t.tls {
		return c, nil
	}
	host, _, err := net.SplitHostPort(t.addr)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("target address %q: %w", t.addr, err)
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if t.tlsCfg != nil { // the API's upstream.tls: CA, client certificate, server name
		cfg = t.tlsCfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(t.connect))
	if err := tc.Handshake(); err != nil {
		_ = c.Close()
		return nil, errors.Join(errors.New("tls handshake"), err)
	}
	return tc, nil
}
