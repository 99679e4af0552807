package testutil

import (
	"fmt"
	"testing"
	"time"
)

// A killed primary's replica takes over its slots, and the primary comes
// back as a replica; a paused node answers again after ResumeNode.
func TestRedisClusterReplicasFailover(t *testing.T) {
	t.Parallel()
	c := StartRedisClusterReplicas(t, 1, time.Second)
	if got := len(c.Addrs()); got != 6 {
		t.Fatalf("%d nodes, want 3 primaries and 3 replicas", got)
	}
	const key = "{failover}:k"
	old, err := c.PrimaryFor(key)
	if err != nil {
		t.Fatal(err)
	}
	i := c.NodeIndex(old)
	if role, err := c.NodeRole(i); err != nil || role != "master" {
		t.Fatalf("PrimaryFor names %s, whose role is %q (%v)", old, role, err)
	}
	c.KillNode(i)
	WaitFor(t, 30*time.Second, func() error {
		addr, err := c.PrimaryFor(key)
		if err != nil {
			return err
		}
		if addr == old {
			return fmt.Errorf("no replica promoted yet")
		}
		return nil
	})
	if err := c.RestartNode(i); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() error { return c.NodeHealthy(i) })
	if role, err := c.NodeRole(i); err != nil || role != "slave" {
		t.Fatalf("the old primary came back as %q (%v), want a replica", role, err)
	}
	c.PauseNode(i)
	if err := c.NodeHealthy(i); err == nil {
		t.Fatal("a paused node answered")
	}
	c.ResumeNode(i)
	WaitFor(t, 10*time.Second, func() error { return c.NodeHealthy(i) })
}
