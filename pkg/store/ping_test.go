package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestPing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := testutil.StartRedis(t)
	rdb := r.Client(t)
	if err := store.Ping(ctx, rdb); err != nil {
		t.Fatalf("ping a running server: %v", err)
	}
	r.Stop()
	if err := store.Ping(ctx, rdb); err == nil {
		t.Fatal("ping succeeded with the server stopped")
	}
}

// On a cluster every primary must answer: one dead primary makes Ping fail.
func TestPingEveryClusterPrimary(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := testutil.StartRedisCluster(t)
	rdb := c.Client(t)
	if err := store.Ping(ctx, rdb); err != nil {
		t.Fatalf("ping a healthy cluster: %v", err)
	}
	c.KillNode(2)
	if err := store.Ping(ctx, rdb); err == nil {
		t.Fatal("ping succeeded with a primary dead")
	}
}
