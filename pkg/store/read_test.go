package store_test

import (
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// TestReads runs every read of the configuration on a single Redis and on
// a three-primary Redis Cluster (every key they touch is tagged {cfg}):
// pages in id order with a cursor, existence, the decoded APIs, the
// policies granting an API, and the state with its ETags at one version.
func TestReads(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, client func() redis.UniversalClient) {
		checkReads(t, store.NewIn(store.NewLayout("reads"), client(), 0))
	})
}

func put(t *testing.T, s *store.Store, kind string, v any) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c := store.Change{Kind: kind, Op: store.OpPut, Body: body}
	switch o := v.(type) {
	case *model.API:
		c.ID = o.ID
	case *model.Policy:
		c.ID = o.ID
	case *model.Org:
		c.ID = o.ID
	case *model.Key:
		c.ID, c.Hash = o.ID, o.Hash
	}
	if _, err := s.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func checkReads(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, id := range []string{"c", "a", "b"} {
		put(t, s, store.KindAPI, &model.API{ID: id, ListenPath: "/" + id + "/", Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthKeyless}})
	}
	put(t, s, store.KindPolicy, &model.Policy{ID: "p2", Access: []model.AccessRight{{API: "b"}, {API: "a"}}})
	put(t, s, store.KindPolicy, &model.Policy{ID: "p1", Access: []model.AccessRight{{API: "a"}}})
	put(t, s, store.KindPolicy, &model.Policy{ID: "p3", Access: []model.AccessRight{}})
	put(t, s, store.KindOrg, &model.Org{ID: "o1"})
	put(t, s, store.KindKey, &model.Key{ID: "k2", Hash: model.HashKey([]byte("key-two-0123456789")), Policies: []string{"p1"}})
	put(t, s, store.KindKey, &model.Key{ID: "k1", Hash: model.HashKey([]byte("key-one-0123456789")), Policies: []string{"p2"}, Org: "o1"})

	ids := func(p store.Page) []string {
		var out []string
		for _, it := range p.Items {
			var o struct{ ID string }
			if err := json.Unmarshal(it, &o); err != nil {
				t.Fatal(err)
			}
			out = append(out, o.ID)
		}
		return out
	}
	for _, tc := range []struct {
		kind, after string
		limit       int
		want        []string
		next        string
	}{
		{store.KindAPI, "", 2, []string{"a", "b"}, "b"},
		{store.KindAPI, "b", 2, []string{"c"}, ""},
		{store.KindAPI, "a", 1, []string{"b"}, "b"},
		{store.KindAPI, "bb", 5, []string{"c"}, ""}, // a cursor deleted meanwhile
		{store.KindAPI, "c", 5, nil, ""},
		{store.KindPolicy, "", 50, []string{"p1", "p2", "p3"}, ""},
		{store.KindOrg, "", 1, []string{"o1"}, ""},
		{store.KindKey, "", 1, []string{"k1"}, "k1"},
		{store.KindKey, "k1", 1, []string{"k2"}, ""},
	} {
		p, err := s.List(ctx, tc.kind, tc.after, tc.limit)
		if err != nil {
			t.Fatalf("List(%s, %q, %d): %v", tc.kind, tc.after, tc.limit, err)
		}
		if got := ids(p); !reflect.DeepEqual(got, tc.want) || p.Next != tc.next || p.Items == nil {
			t.Errorf("List(%s, %q, %d) = %v next %q, want %v next %q", tc.kind, tc.after, tc.limit, got, p.Next, tc.want, tc.next)
		}
	}
	// The items are the stored bytes, whose ETag GET answers.
	p, _ := s.List(ctx, store.KindKey, "", 1)
	if raw, _, err := s.GetRaw(ctx, store.KindKey, "k1"); err != nil || string(raw) != string(p.Items[0]) {
		t.Errorf("listed %s, stored %s (%v)", p.Items[0], raw, err)
	}
	for _, bad := range []struct {
		kind  string
		limit int
		want  string
	}{{store.KindAPI, 0, "limit must be positive"}, {"route", 1, `unknown kind "route"`}} {
		if _, err := s.List(ctx, bad.kind, "", bad.limit); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("List(%s, limit %d): %v, want %q", bad.kind, bad.limit, err, bad.want)
		}
	}

	for _, tc := range []struct {
		kind string
		ids  []string
		want map[string]bool
	}{
		{store.KindPolicy, []string{"p1", "ghost", "p3"}, map[string]bool{"p1": true, "p3": true}},
		{store.KindAPI, []string{"k1"}, map[string]bool{}},
		{store.KindKey, []string{"k1", "k3"}, map[string]bool{"k1": true}},
		{store.KindOrg, nil, map[string]bool{}},
	} {
		if got, err := s.Exist(ctx, tc.kind, tc.ids); err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Exist(%s, %v) = %v, %v; want %v", tc.kind, tc.ids, got, err, tc.want)
		}
	}

	for api, want := range map[string][]string{"a": {"p1", "p2"}, "b": {"p2"}, "c": nil} {
		if got, err := s.PoliciesGranting(ctx, api); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("PoliciesGranting(%s) = %v, %v; want %v", api, got, err, want)
		}
	}

	st, err := s.LoadState(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 9 || len(st.APIs) != 3 || len(st.Policies) != 3 || len(st.Orgs) != 1 || len(st.Keys) != 2 || len(st.ETags) != 9 {
		t.Fatalf("state at %d: %d APIs, %d policies, %d orgs, %d keys, %d ETags", st.Version, len(st.APIs), len(st.Policies), len(st.Orgs), len(st.Keys), len(st.ETags))
	}
	for ref, etag := range st.ETags {
		kind, id, _ := strings.Cut(ref, "/")
		if _, want, err := s.GetRaw(ctx, kind, id); err != nil || etag != want {
			t.Errorf("state ETag of %s = %s, GET answers %s (%v)", ref, etag, want, err)
		}
	}
	if st, err := s.LoadState(ctx, false); err != nil || st.Keys != nil || len(st.ETags) != 7 {
		t.Errorf("state without keys: %+v, %v", st, err)
	}
	if snap, err := s.LoadSnapshot(ctx); err != nil || snap.Keys != nil || snap.ETags != nil || snap.Version != 9 {
		t.Errorf("snapshot: %+v, %v", snap, err)
	}

	// A stored API or policy that does not decode (written by hand or by
	// another version) listens nowhere and grants nothing, as in the
	// write's own checks; a snapshot names it.
	for _, c := range []store.Change{
		{Kind: store.KindAPI, Op: store.OpPut, ID: "junk", Body: []byte(`{"id":"junk","listen_path":5}`)},
		{Kind: store.KindPolicy, Op: store.OpPut, ID: "junk", Body: []byte(`{"id":"junk","access":"a"}`)},
	} {
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	apis, err := s.APIs(ctx)
	var got []string
	for _, a := range apis {
		got = append(got, a.ID)
	}
	sort.Strings(got)
	if err != nil || !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("APIs = %v, %v; want a, b, c", got, err)
	}
	if got, err := s.PoliciesGranting(ctx, "a"); err != nil || !reflect.DeepEqual(got, []string{"p1", "p2"}) {
		t.Errorf("PoliciesGranting(a) with a junk policy = %v, %v", got, err)
	}
	if _, err := s.LoadSnapshot(ctx); err == nil || !strings.Contains(err.Error(), "api junk") {
		t.Errorf("snapshot over a junk API: %v, want an error naming it", err)
	}
}
