package server

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// Minimal RFC 6455 framing for the tests: final frames only, client frames
// masked.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|op)
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, m|byte(n))
	case n < 1<<16:
		hdr = append(hdr, m|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, m|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	if mask {
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		hdr = append(hdr, key[:]...)
		masked := make([]byte, len(payload))
		for i, b := range payload {
			masked[i] = b ^ key[i%4]
		}
		payload = masked
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("frame too large for the test")
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}

// wsUpstream is a WebSocket echo server. It counts the upgrade requests it
// saw and notes when a connection of its ends.
type wsUpstream struct {
	*httptest.Server
	handshakes atomic.Int32
	closed     chan struct{}
}

func newWSUpstream(t *testing.T) *wsUpstream {
	u := &wsUpstream{closed: make(chan struct{}, 16)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.handshakes.Add(1)
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "not a websocket handshake", http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Refuse") != "" {
			http.Error(w, "refused by the upstream", http.StatusForbidden)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer func() { conn.Close(); u.closed <- struct{}{} }()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		if brw.Flush() != nil {
			return
		}
		for {
			op, p, err := readFrame(brw.Reader)
			if err != nil {
				return
			}
			if op == 0x8 { // close: answer it and end
				_ = writeFrame(conn, 0x8, p, false)
				return
			}
			if writeFrame(brw, op, p, false) != nil || brw.Flush() != nil {
				return
			}
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// wsDial opens a WebSocket through the gateway at addr; headers are extra
// request header lines. It returns the HTTP status and, on 101, the
// connection and its reader.
func wsDial(t *testing.T, addr, path string, headers ...string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	req := "GET " + path + " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		conn.Close()
		return resp.StatusCode, nil, nil
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wsAccept(key) {
		t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
	_ = conn.SetReadDeadline(time.Time{})
	t.Cleanup(func() { conn.Close() })
	return resp.StatusCode, conn, br
}

func wsAPI(target string) *model.API {
	return &model.API{
		ID: "ws", ListenPath: "/ws/", StripListenPath: true,
		Upstream: model.Upstream{Targets: []string{target}},
		Auth:     model.Auth{Mode: model.AuthAPIKey},
		Upgrades: []string{model.UpgradeWebSocket},
	}
}

const wsSecret = "ws-secret-key-0123456789"

// TestWebSocketEcho: 10,000 messages each way through the tunnel, in order.
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	c := newCluster(t)
	c.put(wsAPI(up.URL), &model.Policy{ID: "p", Access: []model.AccessRight{{API: "ws"}}},
		keyFor(wsSecret, func(k *model.Key) { k.Policies = []string{"p"} }))
	n := c.node()
	status, conn, br := wsDial(t, n.srv.Addr(), "/ws/chat", "X-API-Key: "+wsSecret)
	if status != 101 {
		t.Fatalf("handshake: %d", status)
	}
	const msgs = 10000
	werr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriter(conn)
		for i := 0; i < msgs; i++ {
			if err := writeFrame(bw, 0x1, []byte(fmt.Sprintf("message %d", i)), true); err != nil {
				werr <- err
				return
			}
			if i%100 == 99 {
				if err := bw.Flush(); err != nil {
					werr <- err
					return
				}
			}
		}
		werr <- bw.Flush()
	}()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for i := 0; i < msgs; i++ {
		op, p, err := readFrame(br)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if want := fmt.Sprintf("message %d", i); op != 0x1 || string(p) != want {
			t.Fatalf("echo %d: op %d %q, want %q", i, op, p, want)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if g := gaugeValue(t, n, "sluice_upgraded_connections"); g != 1 {
		t.Fatalf("sluice_upgraded_connections = %v during the session", g)
	}
	// A clean close: the close frame is echoed and both sides end.
	if err := writeFrame(conn, 0x8, []byte{0x03, 0xe8}, true); err != nil {
		t.Fatal(err)
	}
	if op, _, err := readFrame(br); err != nil || op != 0x8 {
		t.Fatalf("close answer: op %d, %v", op, err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if g := gaugeValue(t, n, "sluice_upgraded_connections"); g != 0 {
			return fmt.Errorf("sluice_upgraded_connections = %v after close", g)
		}
		return nil
	})
	if ev := waitEvent(t, n, "ws"); ev.Status != 101 || ev.KeyHash != model.HashKey([]byte(wsSecret)) {
		t.Fatalf("event %+v", ev)
	}
}

func gaugeValue(t *testing.T, n *node, name string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestUpgradeRefused: upgrades an API does not allow, and malformed
// handshakes, get 400 and never reach the upstream; authentication applies
// to the handshake; an upstream's refusal reaches the client as it is.
func TestUpgradeRefused(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	c := newCluster(t)
	plain := wsAPI(up.URL)
	plain.ID, plain.ListenPath, plain.Upgrades = "plain", "/plain/", nil
	c.put(wsAPI(up.URL), plain, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "ws"}, {API: "plain"}}},
		keyFor(wsSecret, func(k *model.Key) { k.Policies = []string{"p"} }))
	n := c.node()
	key := "X-API-Key: " + wsSecret
	raw := func(req string) int {
		conn, err := net.Dial("tcp", n.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 400 && !resp.Close {
			t.Errorf("400 to an upgrade without Connection: close")
		}
		return resp.StatusCode
	}
	tests := map[string]struct {
		req  string
		want int
	}{
		"api without upgrades": {"GET /plain/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + "\r\n\r\n", 400},
		"other protocol":       {"GET /ws/x HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" + key + "\r\n\r\n", 400},
		"two protocols":        {"GET /ws/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket, h2c\r\nConnection: Upgrade\r\n" + key + "\r\n\r\n", 400},
		"no connection option": {"GET /ws/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n" + key + "\r\n\r\n", 400},
		"post":                 {"POST /ws/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n" + key + "\r\n\r\nhi", 400},
		"no key":               {"GET /ws/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 401},
		"upstream refuses":     {"GET /ws/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Refuse: 1\r\n" + key + "\r\n\r\n", 403},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := raw(tc.req); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	if h := up.handshakes.Load(); h != 1 {
		t.Fatalf("the upstream saw %d handshakes, want only the one it refused", h)
	}
}

// TestWebSocketKeyRevoked: disabling a key closes the WebSocket opened with
// it once the node applies the change; a tunnel of another key stays.
func TestWebSocketKeyRevoked(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	c := newCluster(t)
	const other = "ws-other-key-0123456789"
	c.put(wsAPI(up.URL), &model.Policy{ID: "p", Access: []model.AccessRight{{API: "ws"}}},
		keyFor(wsSecret, func(k *model.Key) { k.Policies = []string{"p"} }),
		keyFor(other, func(k *model.Key) { k.Policies = []string{"p"} }))
	n := c.node()
	_, conn, br := wsDial(t, n.srv.Addr(), "/ws/chat", "X-API-Key: "+wsSecret)
	_, conn2, br2 := wsDial(t, n.srv.Addr(), "/ws/chat", "X-API-Key: "+other)
	if conn == nil || conn2 == nil {
		t.Fatal("handshakes refused")
	}
	echo := func(conn net.Conn, br *bufio.Reader) error {
		if err := writeFrame(conn, 0x1, []byte("ping"), true); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, p, err := readFrame(br)
		if err == nil && string(p) != "ping" {
			err = fmt.Errorf("echo %q", p)
		}
		return err
	}
	if err := echo(conn, br); err != nil {
		t.Fatal(err)
	}
	from := n.state.Version()
	c.put(keyFor(wsSecret, func(k *model.Key) { k.Policies = []string{"p"}; k.Disabled = true }))
	ctx := context.Background()
	vs, err := c.store.ChangesSince(ctx, from, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if err := n.state.Apply(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := readFrame(br); err == nil || isTimeout(err) {
		t.Fatalf("the revoked key's socket is still open: %v", err)
	}
	select {
	case <-up.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection of the revoked key stayed open")
	}
	if err := echo(conn2, br2); err != nil {
		t.Fatalf("another key's socket: %v", err)
	}
}

// TestWebSocketShutdown: shutting the gateway down closes its tunnels.
func TestWebSocketShutdown(t *testing.T) {
	t.Parallel()
	up := newWSUpstream(t)
	c := newCluster(t)
	a := wsAPI(up.URL)
	a.Auth.Mode = model.AuthKeyless
	c.put(a)
	n := c.node()
	_, conn, br := wsDial(t, n.srv.Addr(), "/ws/chat")
	if conn == nil {
		t.Fatal("handshake refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := readFrame(br); err == nil || isTimeout(err) {
		t.Fatalf("socket after shutdown: %v", err)
	}
	select {
	case <-up.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection stayed open after shutdown")
	}
}
