package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/validation"
)

// DemoKey is the clear value of the demo key. It is public on purpose: it
// exists only in local development clusters.
const DemoKey = "sluice-demo-key-0123456789abcdef"

// demoObjects returns the demo API, its policy and the demo key.
func demoObjects(upstream string) (*model.API, *model.Policy, *model.Key) {
	api := &model.API{
		ID:              "demo",
		Name:            "Demo API",
		ListenPath:      "/demo/",
		StripListenPath: true,
		Upstream:        model.Upstream{Targets: []string{upstream}},
		Auth:            model.Auth{Mode: model.AuthAPIKey},
	}
	pol := &model.Policy{
		ID:        "demo-basic",
		Name:      "Demo basic",
		Access:    []model.AccessRight{{API: "demo"}},
		RateLimit: &model.Limit{Rate: 20, Per: model.Duration(time.Second)},
		Quota:     &model.Quota{Max: 10000, Renewal: model.Duration(time.Hour)},
	}
	key := &model.Key{
		ID:       "demo-key",
		Hash:     model.HashKey([]byte(DemoKey)),
		Alias:    "demo",
		Policies: []string{"demo-basic"},
	}
	return api, pol, key
}

// runSeed writes the demo objects straight into Redis (pkg/store/storetest),
// validated here and not announced: the local cluster's gateways load them
// at start or at their next version check (sync.check_interval).
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed", "[--redis 127.0.0.1:6379] [--namespace sluice] [--upstream http://127.0.0.1:8000]", stderr)
	addr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	password := fs.String("redis-password", "", "Redis password")
	ns := fs.String("namespace", store.DefaultNamespace, "namespace of the environment (its redis.namespace)")
	upstream := fs.String("upstream", "http://127.0.0.1:8000", "demo upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validation.Namespace(*ns); err != nil {
		return fmt.Errorf("--namespace: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: *addr, Password: *password})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := store.NewIn(store.NewLayout(*ns), rdb, 0)
	api, pol, key := demoObjects(*upstream)
	for _, err := range []error{api.Validate().Err(), pol.Validate().Err(), key.Validate().Err()} {
		if err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}
	wrote := 0
	for _, o := range []struct {
		kind, id string
		obj      any
		put      func() (int64, error)
	}{
		{store.KindAPI, api.ID, api, func() (int64, error) { return storetest.PutAPI(ctx, st, api) }},
		{store.KindPolicy, pol.ID, pol, func() (int64, error) { return storetest.PutPolicy(ctx, st, pol) }},
		{store.KindKey, key.ID, key, func() (int64, error) { return storetest.PutKey(ctx, st, key) }},
	} {
		same, err := unchanged(ctx, st, o.kind, o.id, o.obj)
		if err != nil {
			return err
		}
		if same {
			continue
		}
		if _, err := o.put(); err != nil {
			return fmt.Errorf("write %s %s: %w", o.kind, o.id, err)
		}
		wrote++
	}
	v, err := st.Version(ctx)
	if err != nil {
		return fmt.Errorf("read version: %w", err)
	}
	fmt.Fprintf(stdout, "seed: demo API %q on %s -> %s, policy %q (20/s, 10000/h), key %q: %d written, config version %d\n",
		api.ID, api.ListenPath, *upstream, pol.ID, key.ID, wrote, v)
	if wrote > 0 {
		fmt.Fprintf(stdout, "seed: demo key (keep it, only its hash is stored): %s\n", DemoKey)
	}
	return nil
}

// unchanged reports whether the stored object equals obj, so seeding twice
// does not bump the config version. A stored key keeps its creation time.
func unchanged(ctx context.Context, st *store.Store, kind, id string, obj any) (bool, error) {
	raw, _, err := st.GetRaw(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		if k, ok := obj.(*model.Key); ok {
			k.CreatedAt = time.Now().UTC().Truncate(time.Second)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s %s: %w", kind, id, err)
	}
	if k, ok := obj.(*model.Key); ok {
		var old model.Key
		if err := json.Unmarshal(raw, &old); err == nil {
			k.CreatedAt = old.CreatedAt
		}
	}
	want, err := json.Marshal(obj)
	if err != nil {
		return false, err
	}
	var a, b bytes.Buffer
	if json.Compact(&a, raw) != nil || json.Compact(&b, want) != nil {
		return false, nil
	}
	return bytes.Equal(a.Bytes(), b.Bytes()), nil
}
