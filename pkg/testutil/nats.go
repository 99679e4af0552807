package testutil

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATS is an embedded NATS server with JetStream, owned by one test.
type NATS struct {
	t    testing.TB
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// StartNATS starts an embedded NATS server with JetStream on a free loopback
// port, storing streams in a temporary folder so a restart keeps them. It
// is shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	return StartNATSWith(t, func(*server.Options) {})
}

// StartNATSWith is StartNATS with the server options changed by set first
// (authorization, TLS).
func StartNATSWith(t testing.TB, set func(*server.Options)) *NATS {
	t.Helper()
	n := &NATS{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      FreePort(t), // below the ephemeral range: free again when restarted
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	set(&n.opts)
	n.Start()
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.Stop)
	return n
}

// URL is the client URL of the server.
func (n *NATS) URL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(n.opts.Port)
}

// Start starts the server, again on the same port and store after Stop.
func (n *NATS) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		n.t.Fatalf("nats server on %s not ready", n.opts.Host)
	}
	n.srv = srv
}

// Stop shuts the server down; Start brings it back with its streams.
func (n *NATS) Stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Server returns the running server, or nil while stopped.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Conn returns a client connection that reconnects forever, closed when the
// test ends.
func (n *NATS) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
