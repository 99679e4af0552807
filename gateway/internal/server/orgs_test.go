package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// syncNodes applies every changelog version a node has not applied, as
// config sync does on a NATS announcement.
func syncNodes(t *testing.T, c *cluster, nodes ...*node) {
	t.Helper()
	ctx := context.Background()
	for _, n := range nodes {
		vs, err := c.store.ChangesSince(ctx, n.state.Version(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if err := n.state.Apply(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestOrgQuotaAcrossKeysAndNodes: an org of five keys with a quota of 20,
// each key with its own generous quota, hammered over three nodes: exactly
// 20 pass, refused with reason quota and the org's quota in the headers.
// Then changes through sync: a key moved to another org is counted there
// (its requests pass again); the other org's rate limit lowered to 1 is
// enforced; the first org, once no key names it, is deleted and its limit
// no longer applies to the keys that left it.
func TestOrgQuotaAcrossKeysAndNodes(t *testing.T) {
	t.Parallel()
	c := newExactCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.Auth.Mode = model.AuthAPIKey
	a.OnStoreError = model.StoreErrorClosed
	const Q = 20
	c.put(a, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "a"}}, Quota: &model.Quota{Max: 1000, Renewal: model.Duration(time.Hour)}},
		&model.Org{ID: "acme", Quota: &model.Quota{Max: Q, Renewal: model.Duration(time.Hour)}},
		&model.Org{ID: "beta", RateLimit: &model.Limit{Rate: 1000, Per: model.Duration(time.Hour)}})
	var secrets []string
	for i := 0; i < 5; i++ {
		s := fmt.Sprintf("org-member-secret-%d", i)
		secrets = append(secrets, s)
		c.put(keyFor(s, func(k *model.Key) { k.ID, k.Policies, k.Org = fmt.Sprintf("k%d", i), []string{"p"}, "acme" }))
	}
	nodes := []*node{c.node(), c.node(), c.node()}
	ok, limited := hammer(t, func(w, i int) response {
		r := do(t, "GET", nodes[(w+i)%3].url+"/a", "X-API-Key", secrets[(w*15+i)%5])
		if r.status == 429 && r.code != "quota_exceeded" {
			t.Errorf("429 %s, want quota_exceeded", r.code)
		}
		return r
	})
	if ok != Q || limited != hammerRequests-Q {
		t.Fatalf("org quota %d over five keys and three nodes: accepted %d, limited %d", Q, ok, limited)
	}
	r := do(t, "GET", nodes[0].url+"/a", "X-API-Key", secrets[0])
	if got := r.header.Get("RateLimit-Policy"); r.status != 429 || got == "" || r.header.Get("X-RateLimit-Limit") != "20" {
		t.Fatalf("refused by the org: %d, RateLimit-Policy %q, X-RateLimit-Limit %q", r.status, got, r.header.Get("X-RateLimit-Limit"))
	}

	// move k0 to beta: counted there, so it passes again
	c.put(keyFor(secrets[0], func(k *model.Key) { k.ID, k.Policies, k.Org = "k0", []string{"p"}, "beta" }))
	syncNodes(t, c, nodes...)
	for i, n := range nodes {
		if r := do(t, "GET", n.url+"/a", "X-API-Key", secrets[0]); r.status != 200 {
			t.Fatalf("node %d: k0 moved to beta: %d %s", i, r.status, r.body)
		}
		if r := do(t, "GET", n.url+"/a", "X-API-Key", secrets[1]); r.status != 429 {
			t.Fatalf("node %d: k1 still in acme: %d", i, r.status)
		}
	}
	// beta's limit lowered: 3 passed already on beta's rate of 1000/h; 1/h now
	c.put(&model.Org{ID: "beta", RateLimit: &model.Limit{Rate: 1, Per: model.Duration(time.Hour)}})
	syncNodes(t, c, nodes...)
	if r := do(t, "GET", nodes[1].url+"/a", "X-API-Key", secrets[0]); r.status != 429 || r.code != "rate_limited" {
		t.Fatalf("beta's rate lowered to 1/h: %d %s", r.status, r.code)
	}

	// acme in use: its delete is refused inside the write
	if _, err := c.store.Apply(context.Background(), store.Change{Kind: store.KindOrg, Op: store.OpDelete, ID: "acme", IfUnused: true}); err == nil {
		t.Fatal("deleting an org four keys name succeeded")
	}
	for i := 1; i < 5; i++ {
		c.put(keyFor(secrets[i], func(k *model.Key) { k.ID, k.Policies = fmt.Sprintf("k%d", i), []string{"p"} }))
	}
	if _, err := c.store.Apply(context.Background(), store.Change{Kind: store.KindOrg, Op: store.OpDelete, ID: "acme", IfUnused: true}); err != nil {
		t.Fatalf("delete acme once no key names it: %v", err)
	}
	syncNodes(t, c, nodes...)
	for i, n := range nodes {
		if n.state.Snapshot().Org("acme") != nil {
			t.Fatalf("node %d still holds the deleted org", i)
		}
		if r := do(t, "GET", n.url+"/a", "X-API-Key", secrets[1+i]); r.status != 200 {
			t.Fatalf("node %d: key left acme: %d %s", i, r.status, r.body)
		}
	}
}
