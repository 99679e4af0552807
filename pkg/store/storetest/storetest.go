// Package storetest writes configuration straight into a store.Store: for
// tests, for the benchmark harness (gateway/internal/bench) and for the
// development cluster's seed (sluice-dev seed), and for nothing else.
//
// Each write is one store.Apply and nothing more: no validation
// (pkg/model), no reference checks (store.Change.Refs), no announcement on
// NATS, and the audit trail names store.SystemActor. A gateway learns of
// such a write from its periodic version check, or from what the caller
// publishes itself. Tests rely on that: they store what the admin API would
// refuse, to see what a gateway does with it. A service writes through the
// admin API (syncer/internal/api), which validates, checks references
// inside the write and announces every version; TestImporters keeps this
// package out of the services.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// PutAPI stores an API definition (create or replace) and returns the new
// config version.
func PutAPI(ctx context.Context, st *store.Store, a *model.API) (int64, error) {
	return put(ctx, st, store.Change{Kind: store.KindAPI, ID: a.ID}, a)
}

// PutPolicy stores a policy (create or replace).
func PutPolicy(ctx context.Context, st *store.Store, p *model.Policy) (int64, error) {
	return put(ctx, st, store.Change{Kind: store.KindPolicy, ID: p.ID}, p)
}

// PutOrg stores an org (create or replace).
func PutOrg(ctx context.Context, st *store.Store, o *model.Org) (int64, error) {
	return put(ctx, st, store.Change{Kind: store.KindOrg, ID: o.ID}, o)
}

// PutKey stores a key under its hash (create or replace; a new hash for
// the same id rotates the key).
func PutKey(ctx context.Context, st *store.Store, k *model.Key) (int64, error) {
	return put(ctx, st, store.Change{Kind: store.KindKey, ID: k.ID, Hash: k.Hash}, k)
}

// Delete removes the object of kind with id (for keys, the key id): with
// no If-Match and no in-use check (store.Change.IfUnused).
func Delete(ctx context.Context, st *store.Store, kind, id string) (int64, error) {
	return st.Apply(ctx, store.Change{Kind: kind, Op: store.OpDelete, ID: id})
}

func put(ctx context.Context, st *store.Store, c store.Change, obj any) (int64, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return 0, fmt.Errorf("storetest: %s %s: %w", c.Kind, c.ID, err)
	}
	c.Op, c.Body = store.OpPut, body
	return st.Apply(ctx, c)
}
