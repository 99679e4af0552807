// Package proctest runs Sluice's binaries as processes for the end-to-end
// tests and the chaos suite (analytics/e2e, analytics/chaos): it builds them
// from this tree and starts, kills, freezes and restarts them, so a fault
// can be a real SIGKILL. It is for tests only.
package proctest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries are the commands built from this tree for one test run: the
// three sluice services and, when asked, nats-server (the version this
// tree's modules require).
type Binaries struct {
	Gateway, Syncer, Analytics, NATS string
}

// Build builds the binaries into dir, each from its own module (so the
// build works with or without go.work), all at once. Module paths are
// relative to a test package directly under analytics/ (its working
// directory).
func Build(t *testing.T, dir string, withNATS bool) Binaries {
	t.Helper()
	b := Binaries{Gateway: filepath.Join(dir, "sluice-gateway"), Syncer: filepath.Join(dir, "sluice-syncer"),
		Analytics: filepath.Join(dir, "sluice-analytics")}
	targets := []struct{ module, pkg, out string }{
		{"../../gateway", "./cmd/sluice-gateway", b.Gateway},
		{"../../syncer", "./cmd/sluice-syncer", b.Syncer},
		{"..", "./cmd/sluice-analytics", b.Analytics},
	}
	if withNATS {
		b.NATS = filepath.Join(dir, "nats-server")
		targets = append(targets, struct{ module, pkg, out string }{"../../pkg", "github.com/nats-io/nats-server/v2", b.NATS})
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", "build", "-o", tg.out, tg.pkg)
			cmd.Dir = tg.module
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %w\n%s", tg.pkg, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// Proc is one running binary, its output kept in a log file.
type Proc struct {
	t *testing.T
	// Name names the process in messages; Log is its log file.
	Name, Log string
	bin       string
	args      []string
	env       []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with its arguments and the environment env (SLUICE_*
// variables inherited from the test's environment are dropped, so only env
// configures it). It is stopped when the test ends, and on failure the
// tail of its log is printed.
func Start(t *testing.T, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Name: name, bin: bin, args: args, env: env, Log: filepath.Join(t.TempDir(), name+".log")}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- last lines of %s (%s) ---\n%s", name, p.Log, Tail(p.Log, 40))
		}
	})
	return p
}

func (p *Proc) start() error {
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(cleanEnv(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

// cleanEnv is the test's environment without SLUICE_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Kill ends the process with SIGKILL, as a crash would, waits for it and
// returns how it ended ("signal: killed").
func (p *Proc) Kill() string {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
	return cmd.ProcessState.String()
}

// Signal sends sig to the process (SIGSTOP freezes it as a hung worker
// would be, SIGCONT resumes it).
func (p *Proc) Signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
}

// Restart starts the process again (after Kill) with the same binary,
// arguments and environment, appending to the same log. It may run outside
// the test's goroutine, so it returns its error.
func (p *Proc) Restart() error {
	f, err := os.OpenFile(p.Log, os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintf(f, "=== restarted by the test at %s ===\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	return p.start()
}

// Stop sends SIGTERM and, after timeout, SIGKILL.
func (p *Proc) Stop(timeout time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // in case it was frozen
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(timeout):
		p.t.Errorf("%s did not stop within %v of SIGTERM; killed", p.Name, timeout)
		_ = cmd.Process.Kill()
		<-done
	}
}

// WaitReady polls url until it answers 200, failing early if the process
// exits.
func (p *Proc) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited before it was ready:\n%s", p.Name, Tail(p.Log, 20))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", p.Name, timeout, last)
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// SumMetric sums the samples of the Prometheus metric name (every label
// set) in a text exposition body; found is false when there is none.
func SumMetric(body []byte, name string) (sum float64, found bool, err error) {
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric %s: %q: %w", name, line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found, nil
}
