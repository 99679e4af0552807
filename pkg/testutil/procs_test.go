package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRepoRootHoldsTheModules(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	for _, m := range []string{"pkg", "gateway", "syncer", "analytics"} {
		if _, err := os.Stat(filepath.Join(root, m, "go.mod")); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

// A process is killed, restarted into the same log and stopped, and sees
// only the SLUICE_* variables it was given.
func TestProcKillRestartStop(t *testing.T) {
	t.Setenv("SLUICE_INHERITED", "leaked")
	sh, err := lookShell()
	if err != nil {
		t.Skip(err)
	}
	p := StartProc(t, "sleeper", sh, []string{"SLUICE_GIVEN=given"},
		"-c", `echo "inherited=$SLUICE_INHERITED given=$SLUICE_GIVEN"; exec sleep 60`)
	waitLog(t, p, "inherited= given=given", 1)
	if p.Exited() {
		t.Fatal("exited at once")
	}
	if how := p.Kill(); how != "signal: killed" {
		t.Fatalf("Kill: %q", how)
	}
	if !p.Exited() {
		t.Fatal("not exited after Kill")
	}
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "inherited= given=given", 2)
	if !strings.Contains(TailFile(p.Log, 10), "=== restarted by the test") {
		t.Fatalf("no restart mark in the log:\n%s", TailFile(p.Log, 10))
	}
	p.Signal(syscall.SIGSTOP) // Stop resumes a frozen process before SIGTERM
	p.Stop(10 * time.Second)
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
}

func lookShell() (string, error) {
	for _, sh := range []string{"/bin/sh", "/usr/bin/sh"} {
		if _, err := os.Stat(sh); err == nil {
			return sh, nil
		}
	}
	return "", fmt.Errorf("no /bin/sh")
}

// waitLog waits until the log of p holds line n times.
func waitLog(t *testing.T, p *Proc, line string, n int) {
	t.Helper()
	WaitFor(t, 10*time.Second, func() error {
		data, _ := os.ReadFile(p.Log)
		if got := strings.Count(string(data), line+"\n"); got < n {
			return fmt.Errorf("%q %d times in %s, want %d:\n%s", line, got, p.Log, n, data)
		}
		return nil
	})
}

func TestSumMetric(t *testing.T) {
	t.Parallel()
	body := []byte("# TYPE a_total counter\na_total{x=\"1\"} 2\na_total{x=\"2\"} 3.5\na_total_more 9\nb 1e3\n")
	for _, tc := range []struct {
		name  string
		sum   float64
		found bool
	}{{"a_total", 5.5, true}, {"b", 1000, true}, {"a", 0, false}, {"c", 0, false}} {
		sum, found, err := SumMetric(body, tc.name)
		if err != nil || sum != tc.sum || found != tc.found {
			t.Errorf("%s: %v %v %v, want %v %v", tc.name, sum, found, err, tc.sum, tc.found)
		}
	}
	if _, _, err := SumMetric([]byte("a 1x\n"), "a"); err == nil {
		t.Error("a malformed value read without error")
	}
}
