package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/lifecycle"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestExitCodesOfTheBinary runs the built sluice-gateway as a user would
// and checks the documented exit codes: 2 bad command line, 3 invalid
// configuration, 4 cannot start (an address taken), 0 after SIGTERM.
func TestExitCodesOfTheBinary(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "sluice-gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })
	env := func(kv ...string) []string {
		var out []string
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "SLUICE_") {
				out = append(out, e)
			}
		}
		return append(append(out, "SLUICE_REDIS_ADDR="+r.Addr(), "SLUICE_NATS_URL="+nt.URL(), "SLUICE_LOG_FORMAT=json",
			"SLUICE_LISTEN=127.0.0.1:"+fmt.Sprint(testutil.FreePort(t)), "SLUICE_OPS_LISTEN=127.0.0.1:"+fmt.Sprint(testutil.FreePort(t))), kv...)
	}
	exitCode := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want int
		says string
	}{
		{"unknown flag", []string{"--nope"}, env(), lifecycle.ExitUsage, "flag provided but not defined: -nope"},
		{"invalid configuration", nil, env("SLUICE_PROXY_READ_TIMEOUT=-1s"), lifecycle.ExitConfig, "proxy.read_timeout: must be a positive duration"},
		{"unparsable variable", nil, env("SLUICE_PROXY_READ_TIMEOUT=soon"), lifecycle.ExitConfig, "proxy.read_timeout: SLUICE_PROXY_READ_TIMEOUT:"},
		{"ops address taken", nil, env("SLUICE_OPS_LISTEN=" + taken.Addr().String()), lifecycle.ExitStart, "cannot start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = tc.env
			out, err := cmd.CombinedOutput()
			if code := exitCode(err); code != tc.want || !strings.Contains(string(out), tc.says) {
				t.Fatalf("exit %d, want %d and output saying %q:\n%s", code, tc.want, tc.says, out)
			}
		})
	}
	t.Run("SIGTERM after ready", func(t *testing.T) {
		e := env()
		ops := strings.TrimPrefix(e[len(e)-1], "SLUICE_OPS_LISTEN=")
		cmd := exec.Command(bin)
		cmd.Env = e
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		testutil.WaitFor(t, 20*time.Second, func() error {
			resp, err := http.Get("http://" + ops + "/health")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if code := exitCode(err); code != lifecycle.ExitOK || !strings.Contains(logs.String(), `"message":"stopped"`) {
				t.Fatalf("exit %d after SIGTERM, want 0:\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("still running 30s after SIGTERM:\n%s", logs.String())
		}
	})
}
