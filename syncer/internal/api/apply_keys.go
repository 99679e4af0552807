package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/validation"
	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

// Keys in POST /v1/apply. The request carries each key's settings and its
// hash, never a clear value (sluicectl hashes the ${env:NAME} values of a
// file before sending). Keys are planned only when the request has a keys
// member, so a request without one leaves every stored key alone, even
// with prune. Client certificate records (POST /v1/keys with a
// certificate) are not declarative: they are neither planned nor pruned,
// and a declared key may not take the id of one.

// keyState is the stored keys of a state, read in the same transaction as
// the version, APIs and policies.
type keyState struct {
	created map[string]time.Time // id -> created_at of the stored key
	certs   map[string]bool      // ids of client certificate records
}

// addKeys adds the stored keys to st. Client certificate records are
// not declarative: st knows their ids, not their ETags.
func (st *state) addKeys(keys []model.Key) {
	st.keys = keyState{created: map[string]time.Time{}, certs: map[string]bool{}}
	for i := range keys {
		k := &keys[i]
		if k.Certificate != nil {
			st.keys.certs[k.ID] = true
			delete(st.etags, store.KindKey+"/"+k.ID)
			continue
		}
		st.file.Keys = append(st.file.Keys, declarative.KeyOf(k))
		st.keys.created[k.ID] = k.CreatedAt
	}
	st.file.KeysSet = true
}

// checkCertKeys refuses a declared key with the id of a client
// certificate record.
func (st *state) checkCertKeys(want *declarative.File) validation.Errors {
	var errs validation.Errors
	for i, k := range want.Keys {
		if st.keys.certs[k.ID] {
			errs.Add(validation.Index("keys", i)+".id", "key %s is a client certificate's record: manage it with sluicectl keys, not in a declarative file", k.ID)
		}
	}
	return errs
}

// selectKeyTag is selectTag for keys: every desired key carries tag, none
// takes the id of a stored key without it, and the stored keys without
// it are added to outside (neither updated nor pruned).
func selectKeyTag(want, cur, outside *declarative.File, tag string) validation.Errors {
	var errs validation.Errors
	stored := map[string][]string{}
	for _, k := range cur.Keys {
		stored[k.ID] = k.Tags
	}
	for i, k := range want.Keys {
		p := validation.Index("keys", i)
		if !model.HasTag(k.Tags, tag) {
			errs.Add(p+".tags", "lacks the selected tag %q", tag)
		}
		if have, ok := stored[k.ID]; ok && !model.HasTag(have, tag) {
			errs.Add(p+".id", "key %s is stored without tag %q: it is outside the selection", k.ID, tag)
		}
	}
	for _, k := range cur.Keys {
		if !model.HasTag(k.Tags, tag) {
			outside.Keys = append(outside.Keys, k)
		}
	}
	outside.KeysSet = true
	return errs
}

// keyChange fills c, the put of a planned key: its stored form (created
// now, or when the stored key was), its hash and the policies and APIs it
// names, checked again inside the write.
func (st *state) keyChange(c *store.Change, k *declarative.Key) error {
	created, ok := st.keys.created[k.ID]
	if !ok {
		created = st.now
	}
	m := k.Model(created)
	body, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	c.Hash, c.Body, c.Refs = m.Hash, body, store.KeyRefs(&m)
	return nil
}

// checkKeyIssue refuses (403) an apply that creates a key or changes a
// key's value when the token may not issue keys: as with the key routes,
// an operator may change a key's settings and delete it, not mint or
// rotate one.
func checkKeyIssue(r *http.Request, plan *declarative.Plan) error {
	if mayIssue(r.Context()) {
		return nil
	}
	for _, a := range plan.Actions {
		if a.Kind != declarative.KindKey {
			continue
		}
		rotates := false
		for _, c := range a.Changes {
			rotates = rotates || c.Field == "hash"
		}
		if a.Op == declarative.OpCreate || rotates {
			return errorf(http.StatusForbidden, codeForbidden,
				"key %s: creating a key or changing its value needs a token that may issue keys (admin, issuer); nothing was written", a.ID)
		}
	}
	return nil
}

// mayIssue reports whether the request's token may create and rotate keys
// (or no authentication is configured).
func mayIssue(ctx context.Context) bool {
	r, ok := ctx.Value(roleKey{}).(tokens.Role)
	if !ok {
		_, authed := ctx.Value(actorKey{}).(string)
		return !authed
	}
	return keyIssue.has(r)
}
