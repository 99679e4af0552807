package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

func orgPut(id string) store.Change {
	body, _ := json.Marshal(model.Org{ID: id})
	return store.Change{Kind: store.KindOrg, Op: store.OpPut, ID: id, Body: body}
}

func orgDelete(id string) store.Change {
	return store.Change{Kind: store.KindOrg, Op: store.OpDelete, ID: id, IfUnused: true}
}

func keyInOrg(id, org string) store.Change {
	k := model.Key{ID: id, Hash: model.HashKey([]byte("secret-of-" + id + "-0123456789")), Policies: []string{"p"}, Org: org}
	body, _ := json.Marshal(k)
	return store.Change{Kind: store.KindKey, Op: store.OpPut, ID: id, Hash: k.Hash, Body: body, Refs: store.KeyRefs(&k)}
}

// TestOrgRules: a key may name only an existing org (also one created
// earlier in the same write); an org is deleted only once no key names it,
// counting the key writes before the delete in the same write (moves,
// deletes, a key written twice); the snapshot holds the orgs.
func TestOrgRules(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, client func() redis.UniversalClient) {
		st := store.New(client(), 0)
		ctx := context.Background()
		steps := []struct {
			name    string
			changes []store.Change
			want    error
		}{
			{"policy", []store.Change{grantingPolicy("p")}, nil},
			{"key in a missing org", []store.Change{keyInOrg("k1", "acme")}, store.ErrDanglingRef},
			{"org and key in one write", []store.Change{orgPut("acme"), keyInOrg("k1", "acme")}, nil},
			{"second key", []store.Change{keyInOrg("k2", "acme")}, nil},
			{"delete in use", []store.Change{orgDelete("acme")}, store.ErrInUse},
			{"one key moved out, still in use", []store.Change{orgPut("beta"), keyInOrg("k1", "beta"), orgDelete("acme")}, store.ErrInUse},
			{"key written twice, last in acme", []store.Change{keyInOrg("k2", ""), keyInOrg("k2", "acme"), orgDelete("acme")}, store.ErrInUse},
			{"both moved out in the same write", []store.Change{orgPut("beta"), keyInOrg("k1", "beta"), {Kind: store.KindKey, Op: store.OpDelete, ID: "k2"}, orgDelete("acme")}, nil},
			{"key in the deleted org", []store.Change{keyInOrg("k3", "acme")}, store.ErrDanglingRef},
			{"beta in use by k1", []store.Change{orgDelete("beta")}, store.ErrInUse},
			{"k1 out of any org", []store.Change{keyInOrg("k1", "")}, nil},
			{"beta unused", []store.Change{orgDelete("beta")}, nil},
		}
		for _, s := range steps {
			_, err := st.Apply(ctx, s.changes...)
			if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
				t.Fatalf("%s: %v, want %v", s.name, err, s.want)
			}
		}
		if n, err := client().HLen(ctx, st.Layout().OrgKeys()).Result(); err != nil || n != 0 {
			t.Fatalf("org key counts left: %d %v", n, err)
		}
		if _, err := st.Apply(ctx, orgPut("gamma")); err != nil {
			t.Fatal(err)
		}
		snap, err := st.LoadSnapshot(ctx)
		if err != nil || len(snap.Orgs) != 1 || snap.Orgs[0].ID != "gamma" {
			t.Fatalf("snapshot orgs %+v %v", snap, err)
		}
	})
}
