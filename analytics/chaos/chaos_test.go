//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// timing is how long each phase lasts; SHORT=1 (CHAOS_SHORT=1) shortens
// them so the whole suite runs in a few minutes.
type timing struct {
	warm   time.Duration // load before the fault
	fault  time.Duration // how long a fault is held (a kill: until the restart)
	freeze time.Duration // how long a Redis primary is frozen
	after  time.Duration // load after the fault ended
}

func suiteTiming() timing {
	if os.Getenv("CHAOS_SHORT") != "" {
		return timing{warm: 2 * time.Second, fault: 3 * time.Second, freeze: 3 * time.Second, after: 5 * time.Second}
	}
	return timing{warm: 5 * time.Second, fault: 8 * time.Second, freeze: 10 * time.Second, after: 15 * time.Second}
}

// TestChaos starts the whole topology once and runs the faults one after
// the other under load (they share the cluster, so they cannot run in
// parallel: each starts from a cluster that has recovered from the one
// before). Each fault checks that it took effect, and the load checks the
// invariants; a table of every fault is printed at the end and appended to
// $CHAOS_REPORT when set.
func TestChaos(t *testing.T) {
	runSuite(t, redisCluster, faults(suiteTiming()))
}

// TestChaosSlowLink runs the slow-link fault on its own topology: one
// Redis, the last gateway reaching it through a delay proxy.
func TestChaosSlowLink(t *testing.T) {
	runSuite(t, redisSlowLink, []fault{slowLinkFault})
}

// TestChaosSentinel runs a primary kill on the Sentinel topology: a
// primary, a replica and 3 sentinels.
func TestChaosSentinel(t *testing.T) {
	runSuite(t, redisSentinel, []fault{sentinelKillFault})
}

func runSuite(t *testing.T, mode redisMode, list []fault) {
	tm := suiteTiming()
	bin := buildBinaries(t, t.TempDir())
	tp := startTopology(t, bin, mode)
	var rows []*result
	t.Cleanup(func() {
		table := renderTable(rows)
		fmt.Println(table)
		if path := os.Getenv("CHAOS_REPORT"); path != "" {
			_ = os.MkdirAll(filepath.Dir(path), 0o755)
			if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
				_, _ = f.WriteString(table)
				f.Close()
			}
		}
	})
	for _, f := range list {
		ok := t.Run(f.name, func(t *testing.T) {
			r := runFault(t, tp, tm, f)
			rows = append(rows, r)
		})
		if !ok {
			// A fault whose cluster did not recover leaves nothing sound
			// for the next one.
			tp.waitHealthy(t)
		}
	}
}

// waitHealthy waits until every Redis node is in the cluster (replicas in
// sync), the usage stream has a leader and current replicas, and every
// service is ready.
func (tp *topology) waitHealthy(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, func() error {
		for i := 0; tp.redis != nil && i < len(tp.redis.Addrs()); i++ {
			if err := tp.redis.NodeHealthy(i); err != nil {
				return err
			}
		}
		if _, err := tp.nats.streamLeader(); err != nil {
			return err
		}
		for _, g := range tp.gateways {
			if _, err := get("http://" + g.ops + "/ready"); err != nil {
				return err
			}
		}
		for _, s := range tp.syncers {
			if _, err := get("http://" + s.addr + "/ready"); err != nil {
				return err
			}
		}
		for _, w := range tp.workers {
			if _, err := get("http://" + w.addr + "/ready"); err != nil {
				return err
			}
		}
		return nil
	})
}

// hold lets the load run for d: the schedule of the fault, not a wait for
// a condition.
func hold(d time.Duration) { <-time.After(d) }

// waitDrained waits until no gateway holds a usage event and the workers'
// consumer has nothing pending or unacknowledged.
func (tp *topology) waitDrained(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, func() error {
		for _, g := range tp.gateways {
			held, err := metric(g.ops, "sluice_usage_buffer_events")
			if err != nil {
				return err
			}
			if held != 0 {
				return fmt.Errorf("%s holds %v usage events", g.Name, held)
			}
		}
		info, err := tp.nats.consumerInfo()
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// snapshot is what the gateways published and analytics counted.
type snapshot struct {
	published map[string]float64 // by gateway
	dropped   float64
	retried   float64 // publish errors: batches sent again
	counted   int64
}

func (tp *topology) snapshot(t *testing.T) snapshot {
	t.Helper()
	s := snapshot{published: map[string]float64{}}
	for _, g := range tp.gateways {
		p, err := metric(g.ops, "sluice_usage_events_published_total")
		if err != nil {
			t.Fatal(err)
		}
		d, err := metric(g.ops, "sluice_usage_events_dropped_total")
		if err != nil {
			t.Fatal(err)
		}
		e, err := metric(g.ops, "sluice_usage_publish_errors_total")
		if err != nil {
			t.Fatal(err)
		}
		s.published[g.Name], s.dropped, s.retried = p, s.dropped+d, s.retried+e
	}
	w, err := tp.liveWorker()
	if err != nil {
		t.Fatal(err)
	}
	for _, api := range []string{openAPI, tp.closedAPI} {
		n, err := w.counted(api)
		if err != nil {
			t.Fatal(err)
		}
		s.counted += n
	}
	return s
}

// renderTable is the report of every fault.
func renderTable(rows []*result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-20s %6s %7s %6s %6s %6s %6s %7s %7s %9s %9s %9s %5s %6s %9s %9s\n",
		"fault", "held", "reqs", "2xx", "429", "503", "other", "noansw", "401/403", "disrupt", "recover",
		"published", "lost", "double", "max/s in", "max/s out")
	for _, r := range rows {
		pub := "n/a"
		if r.published >= 0 {
			pub = fmt.Sprint(r.published)
		}
		fmt.Fprintf(&b, "%-20s %6s %7d %6d %6d %6d %6d %7d %7d %9s %9s %9s %5d %6d %9d %9d\n",
			r.name, r.held.Round(100*time.Millisecond), r.requests, r.ok, r.limited, r.unavailable, r.other,
			r.noAnswer, r.unauthorized, r.disruption.Round(10*time.Millisecond), r.recovery.Round(10*time.Millisecond),
			pub, r.lost, r.double, r.maxDuring, r.maxAfter)
		for _, n := range r.notes {
			fmt.Fprintf(&b, "%-20s   %s\n", "", n)
		}
	}
	return b.String()
}
