package testutil

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Three sentinels promote the replica of a killed primary, and the old
// primary rejoins as a replica of it.
func TestSentinelsFailover(t *testing.T) {
	t.Parallel()
	s := StartSentinels(t, 3)
	if got := len(s.Addrs()); got != 3 {
		t.Fatalf("%d sentinels, want 3", got)
	}
	ctx := context.Background()
	old := s.Primary.Addr()
	s.Primary.Kill()
	WaitFor(t, 30*time.Second, func() error {
		addr, err := s.PrimaryAddr(ctx, t)
		if err != nil {
			return err
		}
		if addr != s.Replica.Addr() {
			return fmt.Errorf("sentinels name %s the primary", addr)
		}
		return nil
	})
	s.Primary.Start()
	WaitFor(t, 30*time.Second, func() error {
		role, err := s.Primary.Role(ctx)
		if err != nil {
			return err
		}
		if role != "slave" {
			return fmt.Errorf("old primary %s is a %s", old, role)
		}
		return nil
	})
}
