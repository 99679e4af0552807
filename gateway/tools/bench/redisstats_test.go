package bench

import (
	"context"
	"testing"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestRoundTripsExcludeScriptInternals checks on a real Redis that a script
// call is one round trip however many commands it runs inside.
func TestRoundTripsExcludeScriptInternals(t *testing.T) {
	t.Parallel()
	rdb := testutil.StartRedis(t).Client(t)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before, err := ReadStats(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	const calls = 5
	for i := 0; i < calls; i++ {
		err := rdb.Eval(ctx, "redis.call('set', KEYS[1], 1); redis.call('get', KEYS[1]); return redis.call('get', KEYS[1])", []string{"k"}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	after, err := ReadStats(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	if d.Scripts != calls || d.RoundTrips != calls || d.Commands != 4*calls {
		t.Errorf("delta = scripts %d, round trips %d, commands %d; want %d, %d, %d (%v)",
			d.Scripts, d.RoundTrips, d.Commands, calls, calls, 4*calls, d.ByName)
	}
}
