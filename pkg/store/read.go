package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
)

// The reads of the configuration. Like the writes (Apply), they are the
// only code that knows which hash holds what: callers ask for objects by
// kind and id and get their stored JSON or model types back.

// objectHash returns the hash that holds the objects of kind by id: for
// keys, the index of key id -> key hash (KeyIDs).
func (s *Store) objectHash(kind string) (string, error) {
	switch kind {
	case KindAPI:
		return s.layout.APIs(), nil
	case KindPolicy:
		return s.layout.Policies(), nil
	case KindOrg:
		return s.layout.Orgs(), nil
	case KindKey:
		return s.layout.KeyIDs(), nil
	}
	return "", fmt.Errorf("store: unknown kind %q", kind)
}

// Ping checks that the Store's Redis answers (see the function Ping).
func (s *Store) Ping(ctx context.Context) error { return Ping(ctx, s.rdb) }

// GetRaw returns the stored JSON of an object and its ETag. For keys, id is
// the key id.
func (s *Store) GetRaw(ctx context.Context, kind, id string) ([]byte, string, error) {
	hkey, err := s.objectHash(kind)
	if err != nil {
		return nil, "", err
	}
	if kind == KindKey {
		h, err := s.rdb.HGet(ctx, hkey, id).Result()
		if errors.Is(err, redis.Nil) {
			return nil, "", fmt.Errorf("key %s: %w", id, ErrNotFound)
		} else if err != nil {
			return nil, "", err
		}
		hkey, id = s.layout.Keys(), h
	}
	b, err := s.rdb.HGet(ctx, hkey, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	} else if err != nil {
		return nil, "", err
	}
	return b, ETag(b), nil
}

// KeyByHash returns the key stored under hash, or ErrNotFound.
func (s *Store) KeyByHash(ctx context.Context, hash string) (*model.Key, error) {
	b, err := s.rdb.HGet(ctx, s.layout.Keys(), hash).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	} else if err != nil {
		return nil, err
	}
	var k model.Key
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("store: key %s…: %w", hash[:min(8, len(hash))], err)
	}
	return &k, nil
}

// Page is one page of the objects of a kind, in id order, as stored.
type Page struct {
	// Items are the objects' stored JSON; one deleted while the page was
	// read is left out.
	Items []json.RawMessage
	// Next is the id of the page's last object when more follow ("" on the
	// last page): the after of the next page.
	Next string
}

// List returns up to limit objects of kind whose ids sort after after (""
// from the first), in id order. Pages are stable under concurrent writes:
// an object created or deleted meanwhile appears or not, but no other
// object is skipped or repeated. A page costs one HKEYS and one HMGET (keys
// one more, from ids to hashes): fine for a control plane with up to
// hundreds of thousands of objects.
func (s *Store) List(ctx context.Context, kind, after string, limit int) (Page, error) {
	if limit <= 0 {
		return Page{}, fmt.Errorf("store: list: limit must be positive, not %d", limit)
	}
	hkey, err := s.objectHash(kind)
	if err != nil {
		return Page{}, err
	}
	all, err := s.rdb.HKeys(ctx, hkey).Result()
	if err != nil {
		return Page{}, fmt.Errorf("store: list %s: %w", kind, err)
	}
	sort.Strings(all)
	start := 0
	if after != "" {
		start = sort.SearchStrings(all, after)
		if start < len(all) && all[start] == after {
			start++
		}
	}
	end := min(start+limit, len(all))
	ids := all[start:end]
	page := Page{Items: make([]json.RawMessage, 0, len(ids))}
	if end < len(all) && len(ids) > 0 {
		page.Next = ids[len(ids)-1]
	}
	if kind == KindKey {
		if ids, err = s.hmget(ctx, hkey, ids); err != nil {
			return Page{}, fmt.Errorf("store: list %s: %w", kind, err)
		}
		hkey = s.layout.Keys()
	}
	bodies, err := s.hmget(ctx, hkey, ids)
	if err != nil {
		return Page{}, fmt.Errorf("store: list %s: %w", kind, err)
	}
	for _, b := range bodies {
		page.Items = append(page.Items, json.RawMessage(b))
	}
	return page, nil
}

// hmget returns the values of the fields of hkey that exist, in order.
func (s *Store) hmget(ctx context.Context, hkey string, fields []string) ([]string, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, hkey, fields...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out, nil
}

// Exist reports which of ids name a stored object of kind (for keys, key
// ids). One HMGET; none when ids is empty.
func (s *Store) Exist(ctx context.Context, kind string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	hkey, err := s.objectHash(kind)
	if err != nil {
		return nil, err
	}
	vals, err := s.rdb.HMGet(ctx, hkey, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", kind, err)
	}
	for i, v := range vals {
		if v != nil {
			out[ids[i]] = true
		}
	}
	return out, nil
}

// APIs returns every stored API. One whose JSON does not decode (written
// by hand, or by another version) is left out, as the route index of the
// write leaves it out: it listens nowhere.
func (s *Store) APIs(ctx context.Context) ([]model.API, error) {
	stored, err := s.rdb.HGetAll(ctx, s.layout.APIs()).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read apis: %w", err)
	}
	out := make([]model.API, 0, len(stored))
	for _, body := range stored {
		var a model.API
		if json.Unmarshal([]byte(body), &a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// PoliciesGranting returns the sorted ids of the stored policies whose
// access names the API apiID: what an API delete with Change.IfUnused is
// refused for. A policy whose JSON does not decode grants nothing, as in
// the write's check.
func (s *Store) PoliciesGranting(ctx context.Context, apiID string) ([]string, error) {
	stored, err := s.rdb.HGetAll(ctx, s.layout.Policies()).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read policies: %w", err)
	}
	var ids []string
	for id, body := range stored {
		var p model.Policy
		if json.Unmarshal([]byte(body), &p) != nil {
			continue
		}
		for _, ar := range p.Access {
			if ar.API == apiID {
				ids = append(ids, id)
				break
			}
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Snapshot is every API, policy and org at one config version. Keys and
// ETags are in it only when LoadState read them: gateways load keys on
// demand by hash.
type Snapshot struct {
	Version  int64
	APIs     []model.API
	Policies []model.Policy
	Orgs     []model.Org
	// Keys is every key (LoadState with keys).
	Keys []model.Key
	// ETags maps "kind/id" (api/orders; for keys, the key id) to the ETag
	// of the object's stored JSON (LoadState).
	ETags map[string]string
}

// LoadSnapshot reads the whole configuration at one version, atomically.
func (s *Store) LoadSnapshot(ctx context.Context) (*Snapshot, error) {
	return s.load(ctx, false, false)
}

// LoadState is LoadSnapshot with the ETag of every object and, when
// withKeys, every key: the state a declarative plan is made against, read
// at one version.
func (s *Store) LoadState(ctx context.Context, withKeys bool) (*Snapshot, error) {
	return s.load(ctx, withKeys, true)
}

func (s *Store) load(ctx context.Context, withKeys, etags bool) (*Snapshot, error) {
	var ver *redis.StringCmd
	var apis, pols, orgs, keyIDs, keys *redis.MapStringStringCmd
	l := s.layout
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, l.Version())
		apis = p.HGetAll(ctx, l.APIs())
		pols = p.HGetAll(ctx, l.Policies())
		orgs = p.HGetAll(ctx, l.Orgs())
		if withKeys {
			keyIDs = p.HGetAll(ctx, l.KeyIDs())
			keys = p.HGetAll(ctx, l.Keys())
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: load snapshot: %w", err)
	}
	snap := &Snapshot{}
	if v, err := ver.Int64(); err == nil {
		snap.Version = v
	}
	if etags {
		snap.ETags = map[string]string{}
	}
	if snap.APIs, err = decodeAll[model.API](KindAPI, apis.Val(), snap.ETags); err != nil {
		return nil, err
	}
	if snap.Policies, err = decodeAll[model.Policy](KindPolicy, pols.Val(), snap.ETags); err != nil {
		return nil, err
	}
	if snap.Orgs, err = decodeAll[model.Org](KindOrg, orgs.Val(), snap.ETags); err != nil {
		return nil, err
	}
	if withKeys {
		// id -> hash -> body; an id whose body is gone is left out.
		bodies := make(map[string]string, len(keyIDs.Val()))
		for id, h := range keyIDs.Val() {
			if b, ok := keys.Val()[h]; ok {
				bodies[id] = b
			}
		}
		if snap.Keys, err = decodeAll[model.Key](KindKey, bodies, snap.ETags); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// decodeAll decodes the stored objects of kind (id -> JSON), recording
// their ETags in etags when it is not nil.
func decodeAll[T any](kind string, stored map[string]string, etags map[string]string) ([]T, error) {
	var out []T
	for id, body := range stored {
		var v T
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return nil, fmt.Errorf("store: %s %s: %w", kind, id, err)
		}
		out = append(out, v)
		if etags != nil {
			etags[kind+"/"+id] = ETag([]byte(body))
		}
	}
	return out, nil
}
