package aggregates_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// TestKeyNamesExpireWithRetention checks that a key's name (id, alias) is
// kept from its events and removed with its usage once older than the
// retention, while a key seen recently keeps its name.
func TestKeyNamesExpireWithRetention(t *testing.T) {
	t.Parallel()
	st := aggregates.New(testutil.StartRedis(t).Client(t), time.Hour, time.Hour)
	ctx := context.Background()
	now := time.Now()
	batch := func(id, hash, keyID, alias string, at time.Time) *rollup.APIBatch {
		ev := usage.Event{ID: id, Time: at.UnixNano(), KeyHash: hash, KeyID: keyID, KeyAlias: alias, Status: 200, Units: 9}
		return rollup.Build("llm", [][]byte{usage.AppendJSON(nil, &ev)}, []int{0})
	}
	res := st.Apply(ctx, []*rollup.APIBatch{batch("old", "h-old", "k-old", "gone", now.Add(-3*time.Hour)),
		batch("new", "h-new", "k-new", "acme", now.Add(-2*time.Minute))}, now)
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	names, err := st.Names(ctx, []string{"llm"}, []string{"h-old", "h-new", "h-none"})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names["h-new"] != (rollup.KeyName{ID: "k-new", Alias: "acme"}) || names["h-old"].Alias != "gone" {
		t.Fatalf("names before closing: %+v", names)
	}
	if _, err := st.Close(ctx, "llm", rollup.Cutoff(now, 10*time.Second), now); err != nil {
		t.Fatal(err)
	}
	names, err = st.Names(ctx, []string{"llm"}, []string{"h-old", "h-new"})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names["h-new"].ID != "k-new" {
		t.Fatalf("names after closing past the retention: %+v, want only h-new", names)
	}
}
