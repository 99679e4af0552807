package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// Keys of the benchmark; they live only in the harness's own Redis.
const (
	benchKey      = "bench-key-0123456789abcdef"
	benchLeaseKey = "bench-lease-key-0123456789abcdef"
)

// High enough that no benchmark request is refused, so every request pays
// for the full decision.
const (
	benchRate  = 10_000_000
	benchQuota = 1_000_000_000_000
)

// seed writes the benchmark APIs: keyless /open/, key auth with rate limit
// and quota in exact mode /full/, and the same in lease mode /lease/.
func seed(ctx context.Context, rdb *redis.Client, upstream string) error {
	st := store.New(rdb, 0)
	up := model.Upstream{Targets: []string{"http://" + upstream}}
	limit := func(mode string) *model.Limit {
		return &model.Limit{Rate: benchRate, Per: model.Duration(time.Second), Mode: mode}
	}
	quota := &model.Quota{Max: benchQuota, Renewal: model.Duration(time.Hour)}
	apis := []*model.API{
		{ID: "bench-open", ListenPath: "/open/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless}},
		{ID: "bench-full", ListenPath: "/full/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}},
		{ID: "bench-lease", ListenPath: "/lease/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}},
	}
	policies := []*model.Policy{
		{ID: "bench-full", Access: []model.AccessRight{{API: "bench-full"}}, RateLimit: limit(model.LimitExact), Quota: quota},
		{ID: "bench-lease", Access: []model.AccessRight{{API: "bench-lease"}}, RateLimit: limit(model.LimitLease), Quota: quota},
	}
	now := time.Now().UTC()
	keys := []*model.Key{
		{ID: "bench-key", Hash: model.HashKey([]byte(benchKey)), Policies: []string{"bench-full"}, CreatedAt: now},
		{ID: "bench-lease-key", Hash: model.HashKey([]byte(benchLeaseKey)), Policies: []string{"bench-lease"}, CreatedAt: now},
	}
	for _, a := range apis {
		if _, err := st.PutAPI(ctx, a); err != nil {
			return fmt.Errorf("seed api %s: %w", a.ID, err)
		}
	}
	for _, p := range policies {
		if _, err := st.PutPolicy(ctx, p); err != nil {
			return fmt.Errorf("seed policy %s: %w", p.ID, err)
		}
	}
	for _, k := range keys {
		if _, err := st.PutKey(ctx, k); err != nil {
			return fmt.Errorf("seed key %s: %w", k.ID, err)
		}
	}
	return nil
}
