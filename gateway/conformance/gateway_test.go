package conformance

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
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// maxBody is the gateway's body limit in the suite (SLUICE_PROXY_MAX_BODY_BYTES).
const maxBody = 65536

// gateway is a running sluice-gateway process.
type gateway struct {
	addr, ops string
}

// startGateway builds sluice-gateway from this tree, starts Redis and NATS,
// seeds one keyless API under /t/ forwarding to upstream (no syncer: the
// store is written directly), starts the binary and waits until it is
// ready. Everything is stopped when the test ends.
func startGateway(t testing.TB, upstream string) *gateway {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sluice-gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice-gateway")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	api := &model.API{ID: "conformance", ListenPath: "/t/", Auth: model.Auth{Mode: model.AuthKeyless},
		Upstream: model.Upstream{Targets: []string{"http://" + upstream}}}
	if errs := api.Validate(); len(errs) > 0 {
		t.Fatal(errs.Err())
	}
	if _, err := storetest.PutAPI(context.Background(), store.New(r.Client(t), 0), api); err != nil {
		t.Fatal(err)
	}
	g := &gateway{addr: freeAddr(t), ops: freeAddr(t)}
	startProc(t, bin, []string{
		"SLUICE_NODE_ID=conformance",
		"SLUICE_LISTEN=" + g.addr,
		"SLUICE_OPS_LISTEN=" + g.ops,
		"SLUICE_REDIS_ADDR=" + r.Addr(),
		"SLUICE_NATS_URL=" + nt.URL(),
		"SLUICE_PROXY_MAX_BODY_BYTES=" + strconv.Itoa(maxBody),
		"SLUICE_PROXY_MAX_HEADER_BYTES=8192",
		"SLUICE_LOG_FORMAT=json",
		"SLUICE_LOG_LEVEL=warn",
	})
	testutil.WaitFor(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + g.ops + "/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ready: %d", resp.StatusCode)
		}
		return nil
	})
	return g
}

func freeAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

// startProc runs bin with env (and none of the test's SLUICE_* variables),
// its output in a log file whose tail is printed if the test fails; it is
// stopped with SIGTERM when the test ends.
func startProc(t testing.TB, bin string, env []string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "gateway.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("gateway did not stop within 10s of SIGTERM; killed")
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			if lines := bytes.Split(out, []byte("\n")); len(lines) > 40 {
				out = bytes.Join(lines[len(lines)-40:], []byte("\n"))
			}
			t.Logf("--- gateway log ---\n%s", out)
		}
	})
}
