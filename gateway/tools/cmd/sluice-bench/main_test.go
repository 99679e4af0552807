package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/tools/bench"
)

// TestMain lets the harness re-execute the test binary as its upstream and
// bare-hop children, as it re-executes sluice-bench.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == bench.RoleUpstream || os.Args[1] == bench.RoleHop) {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestQuickBenchEndToEnd runs the whole harness in --quick mode against a
// gateway built from this tree (SLUICE_BENCH_GATEWAY names another binary)
// and checks every scenario produced figures. It is a load test that takes
// about a minute of both cores, so it runs only when SLUICE_BENCH_E2E=1.
func TestQuickBenchEndToEnd(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_E2E") != "1" {
		t.Skip("a ~1 min load test of the harness: set SLUICE_BENCH_E2E=1 to run it")
	}
	gw := os.Getenv("SLUICE_BENCH_GATEWAY")
	if gw == "" {
		gw = filepath.Join(t.TempDir(), "sluice-gateway")
		build := exec.Command("go", "build", "-o", gw, "github.com/sluicegw/sluice/gateway/cmd/sluice-gateway")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the gateway: %v\n%s", err, out)
		}
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := run(ctx, []string{"--quick", "--generator", "go", "--connections", "16",
		"--gateway", gw, "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	want := []string{bench.ScenUpstream, bench.ScenBareHop, bench.ScenKeyless, bench.ScenFull, bench.ScenChurn,
		bench.ScenBareHopHalf, bench.ScenFullHalf, bench.ScenBareHopTLS, bench.ScenHTTPS, bench.ScenRedisTLS,
		bench.ScenAccessLog, bench.ScenIP, bench.ScenCost, bench.ScenStreamHop, bench.ScenStream, bench.ScenSSEHop, bench.ScenSSE}
	got := map[string]*bench.Result{}
	for _, r := range rep.Results {
		got[r.Name] = r
	}
	for _, name := range want {
		r := got[name]
		switch {
		case r == nil:
			t.Errorf("%s: missing from the report", name)
		case r.Skipped != "":
			t.Errorf("%s: skipped: %s", name, r.Skipped)
		case r.Requests == 0 || r.RPS <= 0 || r.P99ms <= 0:
			t.Errorf("%s: no figures: %+v", name, r)
		case r.Errors > 0 || r.Non2xx > 0:
			t.Errorf("%s: %d errors, %d non-2xx answers", name, r.Errors, r.Non2xx)
		}
	}
	// Lease mode and JWT auth depend on the gateway supporting them; the
	// harness reports the reason when it does not.
	optional := []string{bench.ScenFullLease, bench.ScenJWTRS256, bench.ScenJWTES256}
	if l := got[bench.ScenFullLease]; l != nil && l.Skipped == "" {
		optional = append(optional, bench.ScenBareHopHalfLease, bench.ScenLeaseHalf)
	}
	for _, name := range optional {
		if r := got[name]; r == nil {
			t.Errorf("%s: missing from the report", name)
		} else if r.Skipped != "" {
			t.Logf("%s skipped: %s", name, r.Skipped)
		}
	}
	// The churn made its changes and the gateway applied every one.
	if c := got[bench.ScenChurn]; c != nil && c.Skipped == "" {
		switch ch := c.Churn; {
		case ch == nil:
			t.Errorf("%s: no churn figures", bench.ScenChurn)
		case ch.Changes < 50 || ch.Errors > 0:
			t.Errorf("%s: %d changes, %d errors (%s)", bench.ScenChurn, ch.Changes, ch.Errors, ch.LastError)
		case ch.StoreAfter-ch.StoreBefore != ch.Changes || ch.NodeAfter < ch.StoreAfter:
			t.Errorf("%s: store %d -> %d, node %d -> %d after %d changes", bench.ScenChurn,
				ch.StoreBefore, ch.StoreAfter, ch.NodeBefore, ch.NodeAfter, ch.Changes)
		}
	}
	for _, name := range []string{bench.ScenStreamHop, bench.ScenStream, bench.ScenSSEHop, bench.ScenSSE} {
		if r := got[name]; r != nil && r.Skipped == "" && (r.Stream == nil || r.Stream.Bytes == 0 || r.Errors > 0) {
			t.Errorf("%s: stream figures %+v, %d errors", name, r.Stream, r.Errors)
		}
	}
	if full := got[bench.ScenFull]; full != nil && (full.Redis.Scripts == 0 || full.Redis.RoundTrips == 0) {
		t.Errorf("%s made no Redis script call: the rate limit was not checked", bench.ScenFull)
	}
	for _, r := range rep.Results {
		if r.Warning != "" {
			t.Errorf("%s: %s", r.Name, r.Warning)
		}
	}
	targets := map[string]bool{}
	for _, tg := range rep.Targets {
		targets[tg.Name] = true
	}
	for _, name := range []string{bench.ScenFull + " throughput", bench.ScenFull + " redis round trips",
		bench.ScenFull + " p99 added at half peak", "throughput under config churn"} {
		if !targets[name] {
			t.Errorf("target %q not evaluated (got %v)", name, targets)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "latency.svg")); err != nil {
		t.Errorf("chart: %v", err)
	}
	t.Logf("\n%s", stdout.String())
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Errorf("--help exit %d", code)
	}
	if code := run(context.Background(), []string{"--bogus"}, &out, &errb); code != 2 {
		t.Errorf("bad flag exit %d, want 2", code)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"--scenarios", "gateway-fulll", "--out", t.TempDir()}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), `unknown scenario "gateway-fulll"`) {
		t.Errorf("unknown scenario: exit %d, %q", code, errb.String())
	}
}
