package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
)

// listenLoopback listens on a free 127.0.0.1 port.
func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func freePort() (int, error) {
	l, err := listenLoopback()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a child process the harness owns; it dies with the harness.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startProcess starts bin with args, its output into logPath, with the
// harness's environment plus env ("NAME=value").
func startProcess(name, logPath string, env []string, bin string, args ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: f}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to 10s before SIGKILL.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// startRedis runs redis-server on a free port without persistence, with a
// TLS port beside it (the run's certificate; clients need none of their
// own), whose address it returns too.
func startRedis(ctx context.Context, dir string, c *certs) (*process, *redis.Client, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, "", err
	}
	tlsPort, err := freePort()
	if err != nil {
		return nil, nil, "", err
	}
	p, err := startProcess("redis", filepath.Join(dir, "redis.log"), nil, "redis-server",
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "no",
		"--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", c.CertFile, "--tls-key-file", c.KeyFile,
		"--tls-ca-cert-file", c.CAFile, "--tls-auth-clients", "no")
	if err != nil {
		return nil, nil, "", err
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	err = poll(ctx, 10*time.Second, func() error {
		if p.exited() {
			return errors.New("redis-server exited (see redis.log)")
		}
		return rdb.Ping(ctx).Err()
	})
	if err != nil {
		rdb.Close()
		p.stop()
		return nil, nil, "", fmt.Errorf("redis-server: %w", err)
	}
	return p, rdb, "127.0.0.1:" + strconv.Itoa(tlsPort), nil
}

// startNATS runs an embedded NATS server with JetStream.
func startNATS(dir string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats: not ready after 10s")
	}
	return srv, nil
}

// poll calls f every 50ms until it returns nil, timeout passes or ctx ends.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get fetches url with headers and returns the status and body.
func get(url string, headers [][2]string) (int, []byte, error) {
	return do(&fasthttp.Client{}, url, headers)
}

// do fetches url with headers through c.
func do(c *fasthttp.Client, url string, headers [][2]string) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	if err := c.DoTimeout(req, resp, 2*time.Second); err != nil {
		return 0, nil, err
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}
