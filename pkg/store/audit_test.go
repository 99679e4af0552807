package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
)

func policyChange(id, body, ifMatch string) store.Change {
	return store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: id, Body: []byte(body), IfMatch: ifMatch}
}

func allAudit(t *testing.T, s *store.Store, q store.AuditQuery) []store.AuditEntry {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	var out []store.AuditEntry
	for {
		page, next, err := s.Audit(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		q.Before = next
	}
}

// A write and its audit entry are stored together: the entry names the
// actor, the change and the ETags before and after; a refused write
// (precondition, not found) leaves no entry.
func TestAuditIsWrittenWithTheChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	body1, body2 := `{"id":"p","rate":1}`, `{"id":"p","rate":2}`
	v1, err := s.ApplyAs(ctx, "alice", policyChange("p", body1, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyAs(ctx, "mallory", policyChange("p", body2, `"0000000000000000000000000000000000000000"`)); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("stale If-Match: %v, want ErrPrecondition", err)
	}
	if _, err := s.ApplyAs(ctx, "mallory", store.Change{Kind: store.KindAPI, Op: store.OpDelete, ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of a missing API: %v", err)
	}
	v2, err := s.ApplyAs(ctx, "bob", policyChange("p", body2, store.ETag([]byte(body1))))
	if err != nil {
		t.Fatal(err)
	}
	v3, err := storetest.Delete(ctx, s, store.KindPolicy, "p")
	if err != nil {
		t.Fatal(err)
	}
	got := allAudit(t, s, store.AuditQuery{})
	want := []struct {
		v             int64
		actor, op     string
		before, after string
	}{
		{v3, store.SystemActor, store.OpDelete, store.ETag([]byte(body2)), ""},
		{v2, "bob", store.OpPut, store.ETag([]byte(body1)), store.ETag([]byte(body2))},
		{v1, "alice", store.OpPut, "", store.ETag([]byte(body1))},
	}
	if len(got) != len(want) {
		t.Fatalf("%d audit entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		if e.Version != w.v || e.Actor != w.actor || len(e.Changes) != 1 || e.Changes[0].Op != w.op ||
			e.Changes[0].Kind != store.KindPolicy || e.Changes[0].ID != "p" ||
			e.Changes[0].ETagBefore != w.before || e.Changes[0].ETagAfter != w.after {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
		if time.Since(e.Time) > time.Minute || time.Until(e.Time) > time.Minute {
			t.Errorf("entry %d time %v is not now", i, e.Time)
		}
	}
}

// Concurrent writers with If-Match: each version written has exactly one
// audit entry, and the refused writes have none.
func TestAuditOneEntryPerVersionUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	if _, err := s.Apply(ctx, policyChange("p", `{"n":0}`, "")); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				_, etag, err := s.GetRaw(ctx, store.KindPolicy, "p")
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.ApplyAs(ctx, fmt.Sprintf("w%d", w), policyChange("p", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), etag))
				if err != nil && !errors.Is(err, store.ErrPrecondition) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	v, err := s.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := allAudit(t, s, store.AuditQuery{Limit: 7})
	if int64(len(got)) != v {
		t.Fatalf("%d audit entries for %d versions", len(got), v)
	}
	seen := map[int64]bool{}
	var prevAfter string
	for i := len(got) - 1; i >= 0; i-- {
		e := got[i]
		if seen[e.Version] {
			t.Fatalf("version %d audited twice", e.Version)
		}
		seen[e.Version] = true
		// The chain of ETags has no hole: each write started from the
		// state the previous one left.
		if e.Changes[0].ETagBefore != prevAfter {
			t.Fatalf("version %d: ETag before %s, previous after %s", e.Version, e.Changes[0].ETagBefore, prevAfter)
		}
		prevAfter = e.Changes[0].ETagAfter
	}
	if v < 2 {
		t.Fatalf("only %d versions written", v)
	}
}

func TestAuditFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	write := func(actor, kind, id string) store.AuditEntry {
		t.Helper()
		c := store.Change{Kind: kind, Op: store.OpPut, ID: id, Body: []byte(`{"id":"` + id + `"}`)}
		if _, err := s.ApplyAs(ctx, actor, c); err != nil {
			t.Fatal(err)
		}
		e := allAudit(t, s, store.AuditQuery{Limit: 1})
		return e[0]
	}
	a1 := write("alice", store.KindPolicy, "p1")
	b1 := write("bob", store.KindPolicy, "p2")
	a2 := write("alice", store.KindPolicy, "p2")
	all := []store.AuditEntry{a2, b1, a1}
	ids := func(es []store.AuditEntry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Version)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    store.AuditQuery
		want []int64
	}{
		{"all", store.AuditQuery{}, []int64{3, 2, 1}},
		{"actor", store.AuditQuery{Actor: "alice"}, []int64{3, 1}},
		{"id", store.AuditQuery{ID: "p2"}, []int64{3, 2}},
		{"kind", store.AuditQuery{Kind: store.KindAPI}, nil},
		{"kind and id", store.AuditQuery{Kind: store.KindPolicy, ID: "p1"}, []int64{1}},
		{"since", store.AuditQuery{Since: b1.Time}, within(all, b1.Time, a2.Time)},
		{"until", store.AuditQuery{Until: a1.Time}, within(all, a1.Time, a1.Time)},
		{"since and until", store.AuditQuery{Since: b1.Time, Until: b1.Time}, within(all, b1.Time, b1.Time)},
		{"before", store.AuditQuery{Before: a2.ID}, []int64{2, 1}},
		{"page of 1", store.AuditQuery{Limit: 1, Actor: "alice"}, []int64{3, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ids(allAudit(t, s, tc.q))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("versions %v, want %v", got, tc.want)
			}
		})
	}
	if _, _, err := s.Audit(ctx, store.AuditQuery{Limit: 1, Before: "x"}); err == nil {
		t.Error("a bad cursor was accepted")
	}
}

// within returns the versions of es (newest first) whose time lies in
// [from, to]: entries written in the same millisecond share a time.
func within(es []store.AuditEntry, from, to time.Time) []int64 {
	var out []int64
	for _, e := range es {
		if !e.Time.Before(from) && !e.Time.After(to) {
			out = append(out, e.Version)
		}
	}
	return out
}

// A batch too large for one argument per field (a Lua call takes at most
// 8000) is audited whole, as one packed entry: the write succeeds and its
// audit entry names every change.
func TestAuditOfALargeBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	const n = 2000
	changes := make([]store.Change, n)
	for i := range changes {
		id := fmt.Sprintf("p%d", i)
		changes[i] = policyChange(id, `{"id":"`+id+`"}`, "")
	}
	v, err := s.ApplyAs(ctx, "ci", changes...)
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := s.Audit(ctx, store.AuditQuery{Limit: 1})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit: %v %v", entries, err)
	}
	e := entries[0]
	if e.Version != v || e.Actor != "ci" || len(e.Changes) != n || e.Changes[n-1].ID != "p1999" || e.Changes[0].ETagAfter == "" {
		t.Fatalf("entry: version %d actor %q, %d changes", e.Version, e.Actor, len(e.Changes))
	}
}
