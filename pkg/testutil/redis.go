package testutil

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server process owned by one test (or package).
type Redis struct {
	t    testing.TB
	mu   sync.Mutex
	port int
	dir  string
	// extra arguments of every start; tlsPort is the TLS port, if any.
	extra   []string
	tlsPort int
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartRedis starts redis-server on a free loopback port with an
// append-only file in a temporary folder, so a restart keeps the data. It is
// stopped when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startRedis(t, func(*Redis) {})
}

// StartRedisTLS starts redis-server as StartRedis does, with a TLS port
// (TLSAddr) beside the plain one, its certificate issued by ca; TLS
// clients must present a certificate of ca. The plain port (Addr, Client)
// stays open for the test's own setup.
func StartRedisTLS(t testing.TB, ca *CA) *Redis {
	t.Helper()
	srv := ca.Server(t)
	return startRedis(t, func(r *Redis) {
		r.tlsPort = FreePort(t)
		r.extra = []string{"--tls-port", strconv.Itoa(r.tlsPort), "--tls-cert-file", srv.CertFile,
			"--tls-key-file", srv.KeyFile, "--tls-ca-cert-file", ca.File, "--tls-auth-clients", "yes"}
	})
}

// TLSAddr is host:port of the TLS port of a server from StartRedisTLS.
func (r *Redis) TLSAddr() string { return "127.0.0.1:" + strconv.Itoa(r.tlsPort) }

func startRedis(t testing.TB, setup func(*Redis)) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found on PATH: install it (apt-get install -y redis-server)")
	}
	r := &Redis{t: t, dir: t.TempDir()}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		r.port = FreePort(t)
		setup(r)
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.kill)
			return r
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Client returns a new client for the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd, done, err := spawnRedis(r.dir, r.port,
		append([]string{"--appendonly", "yes", "--appendfsync", "no"}, r.extra...)...)
	if err != nil {
		return err
	}
	r.cmd, r.done = cmd, done
	return nil
}

// spawnRedis starts redis-server on 127.0.0.1:port with its log and data in
// dir and the extra arguments, and waits until it answers PING. done is
// closed when the process exits.
func spawnRedis(dir string, port int, extra ...string) (*exec.Cmd, chan struct{}, error) {
	return spawn(dir, port, nil, extra...)
}

// spawn is spawnRedis with lead arguments first (a configuration file).
func spawn(dir string, port int, lead []string, extra ...string) (*exec.Cmd, chan struct{}, error) {
	args := append(append(lead, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
		"--protected-mode", "no"), extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return cmd, done, nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, nil, fmt.Errorf("redis-server exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return nil, nil, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (its data is kept for Start).
func (r *Redis) Stop() {
	r.t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Start starts a stopped server again on the same port with the same data.
func (r *Redis) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restart redis-server: %v", err)
	}
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, as with a Redis that hangs. Resume undoes it.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}

func (r *Redis) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-done
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// The port is drawn at random below the kernel's ephemeral range (the
// ports bind(":0") and outgoing connections take), so a server a test
// stops and starts again on its port does not find it taken meanwhile by
// another test's listener or connection. Where that range leaves too few
// ports below it, the kernel picks.
func FreePort(t testing.TB) int {
	t.Helper()
	if lo, ok := ephemeralLow(); ok && lo > minTestPort+1000 {
		for range 200 {
			port := minTestPort + rand.IntN(lo-minTestPort)
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				_ = l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// minTestPort is the lowest port FreePort draws (above the well-known and
// most registered service ports).
const minTestPort = 20000

// ephemeralLow returns the lowest port of the kernel's ephemeral range.
func ephemeralLow() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	lo, err := strconv.Atoi(f[0])
	return lo, err == nil
}

// WaitFor polls check until it returns nil or timeout passes, then fails the
// test with the last error.
func WaitFor(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartRedisACL starts redis-server as StartRedis does, with the users of
// the ACL file aclFile (the deployments/ example, as shipped). So that the
// test can set up and inspect data, the default user is turned on again
// with every right: the services connect as the file's users.
func StartRedisACL(t testing.TB, aclFile string) *Redis {
	t.Helper()
	body, err := os.ReadFile(aclFile)
	if err != nil {
		t.Fatalf("acl file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "users.acl")
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, "user default ") { // one definition per user
			lines = append(lines, l)
		}
	}
	lines = append(lines, "user default on nopass ~* &* +@all", "")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return startRedis(t, func(r *Redis) { r.extra = []string{"--aclfile", path} })
}

// ACLDenials returns the ACL log's entries (what was refused, to whom), for
// tests to show why a least-privilege user was refused.
func (r *Redis) ACLDenials(t testing.TB) []string {
	t.Helper()
	c := r.Client(t)
	entries, err := c.Do(context.Background(), "ACL", "LOG").Slice()
	if err != nil {
		t.Fatalf("acl log: %v", err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// ClientAs returns a client of the server authenticated as an ACL user,
// closed when the test ends.
func (r *Redis) ClientAs(t testing.TB, user, password string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Username: user, Password: password})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
