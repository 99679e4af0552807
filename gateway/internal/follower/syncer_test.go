package follower

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

const adminToken = "bench-admin-token-0123456789"

// syncer is a real sluice-syncer process: the admin API whose writes the
// nodes follow.
type syncer struct {
	t   testing.TB
	url string
}

// startSyncer builds and runs sluice-syncer against the cluster's Redis
// and NATS.
func (c *cluster) startSyncer() *syncer {
	c.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(c.t))
	c.run("github.com/sluicegw/sluice/syncer/cmd/sluice-syncer", "http://"+addr+"/ready", "--listen", addr)
	return &syncer{t: c.t, url: "http://" + addr}
}

// run builds the binary of pkg, runs it with args and the cluster's Redis
// and NATS in its environment, and waits until readyURL answers 200. It is
// stopped when the test ends.
func (c *cluster) run(pkg, readyURL string, args ...string) {
	c.t.Helper()
	bin := filepath.Join(c.t.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := build.CombinedOutput(); err != nil {
		c.t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+adminToken, "SLUICE_REDIS_ADDR="+c.redis.Addr(),
		"SLUICE_NATS_URL="+c.nats.URL(), "SLUICE_LOG_LEVEL=warn", "SLUICE_LOG_FORMAT=json")
	cmd.Env = append(cmd.Env, c.env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	testutil.WaitFor(c.t, 30*time.Second, func() error {
		select {
		case <-done:
			c.t.Fatalf("%s exited: %s", filepath.Base(pkg), logs.String())
		default:
		}
		res, err := http.Get(readyURL)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("ready: %d", res.StatusCode)
		}
		return nil
	})
}

// do sends an admin request and fails unless the status is want; it
// returns the config version the write created (0 for reads) and the body.
func (s *syncer) do(want int, method, path, body string) (int64, []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		s.t.Fatalf("%s %s = %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	v, _ := strconv.ParseInt(res.Header.Get("Sluice-Config-Version"), 10, 64)
	return v, b
}
