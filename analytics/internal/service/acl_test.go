package service

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestWorkerUnderLeastPrivilegeACL runs a worker as the sluice-analytics
// user of deployments/redis/users.acl, unchanged: it aggregates events,
// closes minutes and answers queries exactly, and Redis refuses it nothing.
func TestWorkerUnderLeastPrivilegeACL(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, testutil.StartRedisACL(t, "../../../deployments/redis/users.acl"))
	cfg := e.config()
	cfg.Redis.Username, cfg.Redis.Password = "sluice-analytics", "change-me-analytics"
	s := e.start(t, cfg)
	// Events two minutes old: their minutes close (and are written to the
	// rollup streams) while the worker runs.
	batches, exp := gen(300, 50, time.Now().Add(-2*time.Minute))
	for _, b := range batches {
		e.publish(t, b.api, b.id, b.evs)
	}
	refused := func() {
		if d := e.redis.ACLDenials(t); len(d) > 0 {
			t.Fatalf("Redis refused the analytics user: %s", strings.Join(d, "\n"))
		}
	}
	testutil.WaitFor(t, 20*time.Second, func() error { refused(); return checkExact(s.Addr(), exp) })
	testutil.WaitFor(t, 10*time.Second, func() error {
		if refused(); metric(t, s.Addr(), "sluice_analytics_rollups_closed_total") == 0 {
			return errNotYet
		}
		return nil
	})
	refused()
}
