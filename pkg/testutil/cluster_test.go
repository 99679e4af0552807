package testutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRedisClusterSpreadsSlots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := StartRedisCluster(t)
	cc := c.Client(t)
	// Every key is reachable through the cluster client, and the keys land
	// on every node.
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("{t%d}:k", i)
		if err := cc.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
		if v, err := cc.Get(ctx, key).Int(); err != nil || v != i {
			t.Fatalf("get %s: %d, %v", key, v, err)
		}
		seen[c.NodeFor(t, key)] = true
	}
	if len(seen) != len(c.Addrs()) {
		t.Fatalf("keys landed on %v, want every node of %v", seen, c.Addrs())
	}
	// A real cluster: one script may touch one slot only.
	err := cc.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"{t0}:k", "{t0}:other"}).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("same-slot script: %v", err)
	}
	err = cc.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{"{t0}:k", "{t1}:k"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("cross-slot script: %v, want CROSSSLOT", err)
	}
}
