package store_test

import (
	"context"
	"testing"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestSlotMatchesRedis: Slot agrees with Redis Cluster's CLUSTER KEYSLOT
// on counter keys, tags at the edges, empty and unclosed tags.
func TestSlotMatchesRedis(t *testing.T) {
	t.Parallel()
	c := testutil.StartRedisCluster(t).Client(t)
	lay := store.Layout{}
	for _, k := range []string{
		"", "a", "123456789", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{", "}{", "x{y",
		lay.CounterPrefix("orders") + "api", lay.KeyCounterPrefix("ab12") + "q:k:ab12", lay.OrgCounterPrefix("acme") + "o:acme",
		store.NewLayout("staging").CounterPrefix("orders"), lay.Version(),
	} {
		want, err := c.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatalf("cluster keyslot %q: %v", k, err)
		}
		if got := store.Slot(k); got != int(want) {
			t.Errorf("Slot(%q) = %d, Redis says %d", k, got, want)
		}
		if got := store.Slot([]byte(k)); got != int(want) {
			t.Errorf("Slot([]byte(%q)) = %d, Redis says %d", k, got, want)
		}
	}
}
