package aggregates_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// TestApplyAndCloseOnRedisCluster records batches of two APIs whose usage
// keys live on different primaries of a real Redis Cluster in one pipeline
// (the scripts not loaded yet: NOSCRIPT reloads them on every node), applies
// them again (all duplicates), and closes their minutes.
func TestApplyAndCloseOnRedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testutil.StartRedisCluster(t)
	st := aggregates.New(c.Client(t), time.Hour, 24*time.Hour)
	apis := [2]string{"orders", ""}
	for i := 0; i < 100 && apis[1] == ""; i++ {
		id := fmt.Sprintf("billing%d", i)
		if c.NodeFor(t, aggregates.Layout{}.Prefix(id)+"tot") != c.NodeFor(t, aggregates.Layout{}.Prefix(apis[0])+"tot") {
			apis[1] = id
		}
	}
	if apis[1] == "" {
		t.Fatal("no API found on another node than orders")
	}
	now := time.Now()
	const msgs, per = 4, 5
	batches := func() []*rollup.APIBatch {
		var out []*rollup.APIBatch
		for _, api := range apis {
			var data [][]byte
			var idx []int
			for m := 0; m < msgs; m++ {
				var b []byte
				for e := 0; e < per; e++ {
					ev := usage.Event{ID: fmt.Sprintf("%s-%d-%d", api, m, e), Time: now.Add(-3 * time.Minute).UnixNano(),
						API: api, KeyHash: "kh", Method: "GET", Status: 200, Latency: 900}
					b = usage.AppendJSON(b, &ev)
				}
				data, idx = append(data, b), append(idx, m)
			}
			out = append(out, rollup.Build(api, data, idx))
		}
		return out
	}
	for i, r := range st.Apply(ctx, batches(), now) {
		if r.Err != nil || len(r.Dups) != 0 {
			t.Fatalf("apply %s: %+v", apis[i], r)
		}
	}
	for i, r := range st.Apply(ctx, batches(), now) {
		if r.Err != nil || len(r.Dups) != msgs {
			t.Fatalf("apply %s again: %+v, want every message a duplicate", apis[i], r)
		}
	}
	seen, err := st.APIs(ctx)
	if err != nil || len(seen) != 2 {
		t.Fatalf("APIs = %v, %v", seen, err)
	}
	for _, api := range apis {
		tot, late, err := st.Totals(ctx, api)
		if err != nil || tot[0] != msgs*per || late != 0 {
			t.Fatalf("%s totals %v late %d, %v; want %d requests", api, tot, late, err, msgs*per)
		}
		closed, err := st.Close(ctx, api, rollup.MinuteOf(now.UnixNano()), now)
		if err != nil || len(closed) != 1 || closed[0].Counts[0] != msgs*per {
			t.Fatalf("%s close = %+v, %v; want one minute of %d requests", api, closed, err, msgs*per)
		}
	}
}
