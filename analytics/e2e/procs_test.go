package e2e

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

// binaries are the sluice commands built from this tree for one run of the
// test binary.
type binaries struct {
	gateway   string
	analytics string
	syncer    string
}

// buildBinaries builds sluice-gateway, sluice-analytics and sluice-syncer
// into dir, each
// from its own module (so the build works with or without go.work), all at
// once.
func buildBinaries(t *testing.T, dir string) binaries {
	t.Helper()
	b := binaries{gateway: filepath.Join(dir, "sluice-gateway"), analytics: filepath.Join(dir, "sluice-analytics"),
		syncer: filepath.Join(dir, "sluice-syncer")}
	targets := []struct{ module, pkg, out string }{
		{"../../gateway", "./cmd/sluice-gateway", b.gateway},
		{"..", "./cmd/sluice-analytics", b.analytics},
		{"../../syncer", "./cmd/sluice-syncer", b.syncer},
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

// proc is one running sluice binary, its output kept in a log file.
type proc struct {
	t    *testing.T
	name string
	bin  string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startProc runs bin with the environment env (SLUICE_* variables inherited
// from the test's environment are dropped, so only env configures it). It
// is stopped when the test ends, and on failure the tail of its log is
// printed.
func startProc(t *testing.T, name, bin string, env []string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("--- last lines of %s (%s) ---\n%s", name, p.log, tail(p.log, 40))
		}
	})
	return p
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(p.bin)
	cmd.Env = append(cleanEnv(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
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

// exited reports whether the process has ended.
func (p *proc) exited() bool {
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

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// signal sends sig to the process (SIGSTOP freezes it as a hung worker
// would be, SIGCONT resumes it).
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	_ = cmd.Process.Signal(sig)
}

// restart starts the process again (after kill) with the same binary and
// environment, appending to the same log. It may run outside the test's
// goroutine, so it returns its error.
func (p *proc) restart() error {
	f, err := os.OpenFile(p.log, os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintf(f, "=== restarted by the test at %s ===\n", time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	return p.start()
}

// stop sends SIGTERM and, after timeout, SIGKILL.
func (p *proc) stop(timeout time.Duration) {
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
		p.t.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, timeout)
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitReady polls url until it answers 200, failing early if the process
// exits.
func (p *proc) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before it was ready:\n%s", p.name, tail(p.log, 20))
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
	return fmt.Errorf("%s not ready after %v: %v", p.name, timeout, last)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
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
