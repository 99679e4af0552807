package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The process helpers below run Sluice's binaries for end-to-end tests and
// the chaos suite: they build them from this tree and start, kill, freeze
// and restart them, so a fault can be a real SIGKILL.

// Binaries are the commands built from this tree for one test run: the
// three sluice services and, when asked, nats-server (the version this
// tree's modules require).
type Binaries struct {
	Gateway, Syncer, Analytics, NATS string
}

// BuildBinaries builds the binaries into dir, each from its own module (so
// the build works with or without go.work), all at once. The modules are
// found from the test's working directory: the repository holding it.
func BuildBinaries(t *testing.T, dir string, withNATS bool) Binaries {
	t.Helper()
	root := repoRoot(t)
	b := Binaries{Gateway: filepath.Join(dir, "sluice-gateway"), Syncer: filepath.Join(dir, "sluice-syncer"),
		Analytics: filepath.Join(dir, "sluice-analytics")}
	targets := []struct{ module, pkg, out string }{
		{"gateway", "./cmd/sluice-gateway", b.Gateway},
		{"syncer", "./cmd/sluice-syncer", b.Syncer},
		{"analytics", "./cmd/sluice-analytics", b.Analytics},
	}
	if withNATS {
		b.NATS = filepath.Join(dir, "nats-server")
		targets = append(targets, struct{ module, pkg, out string }{"pkg", "github.com/nats-io/nats-server/v2", b.NATS})
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
			cmd.Dir = filepath.Join(root, tg.module)
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

// repoRoot is the repository the test runs in: the nearest folder up from
// the working directory that holds the pkg module.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "pkg", "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no Sluice repository (a folder holding pkg/go.mod) above %s", wd)
		}
	}
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

// StartProc runs bin with its arguments and the environment env (SLUICE_*
// variables inherited from the test's environment are dropped, so only env
// configures it). It is stopped when the test ends, and on failure the
// tail of its log is printed.
func StartProc(t *testing.T, name, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Name: name, bin: bin, args: args, env: env, Log: filepath.Join(t.TempDir(), name+".log")}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- last lines of %s (%s) ---\n%s", name, p.Log, TailFile(p.Log, 40))
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
			return fmt.Errorf("%s exited before it was ready:\n%s", p.Name, TailFile(p.Log, 20))
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

// TailFile returns the last n lines of the file at path.
func TailFile(path string, n int) string {
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
