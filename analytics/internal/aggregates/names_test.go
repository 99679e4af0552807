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

// TestKeyNamesSentWhenChangedOrHourly checks that a Store sends a key's
// name again when it changes, and in every new hour even when it does
// not (so the name of a key in use never expires), but not with every
// batch: a name removed from Redis behind its back comes back only with
// the next hour's first batch.
func TestKeyNamesSentWhenChangedOrHourly(t *testing.T) {
	t.Parallel()
	rdb := testutil.StartRedis(t).Client(t)
	st := aggregates.New(rdb, time.Hour, 24*time.Hour)
	ctx := context.Background()
	h0 := time.UnixMilli(aggregates.HourOf(time.Now().Add(-3 * time.Hour).UnixMilli()))
	seq := 0
	apply := func(alias string, at time.Time) {
		t.Helper()
		seq++
		ev := usage.Event{ID: fmt.Sprintf("e%d", seq), Time: at.UnixNano(), KeyHash: "h1", KeyID: "k1", KeyAlias: alias, Status: 200}
		if r := st.Apply(ctx, []*rollup.APIBatch{rollup.Build("llm", [][]byte{usage.AppendJSON(nil, &ev)}, []int{0})}, at); r[0].Err != nil {
			t.Fatal(r[0].Err)
		}
	}
	alias := func() string {
		t.Helper()
		names, err := st.Names(ctx, []string{"llm"}, []string{"h1"})
		if err != nil {
			t.Fatal(err)
		}
		return names["h1"].Alias
	}
	apply("acme", h0)
	if got := alias(); got != "acme" {
		t.Fatalf("alias %q after the first batch, want acme", got)
	}
	apply("acme-renamed", h0.Add(time.Minute))
	if got := alias(); got != "acme-renamed" {
		t.Fatalf("alias %q after a rename, want acme-renamed", got)
	}
	p := st.Layout().Prefix("llm")
	if err := rdb.Del(ctx, p+"kn").Err(); err != nil {
		t.Fatal(err)
	}
	apply("acme-renamed", h0.Add(2*time.Minute))
	if got := alias(); got != "" {
		t.Fatalf("alias %q: the unchanged name was sent again within the hour", got)
	}
	apply("acme-renamed", h0.Add(time.Hour))
	if got := alias(); got != "acme-renamed" {
		t.Fatalf("alias %q after a batch of the next hour, want acme-renamed", got)
	}
}
