package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
)

// Keys of the benchmark; they live only in the harness's own Redis.
const (
	benchKey      = "bench-key-0123456789abcdef"
	benchLeaseKey = "bench-lease-key-0123456789abcdef"
	benchCostKey  = "bench-cost-key-0123456789abcdef"
)

// costReserve is what a gateway-cost request reserves; the upstream
// reports a cost of upstreamCost, so settling gives the rest back.
const costReserve = 10

// High enough that no benchmark request is refused, so every request pays
// for the full decision.
const (
	benchRate  = 10_000_000
	benchQuota = 1_000_000_000_000
)

// churnID is the API and the policy the churn scenario rewrites: served by
// the gateway, used by no benchmark request.
const churnID = "bench-churn"

// jwtAPIID is the id (and policy id) of the JWT API of an algorithm;
// jwtPath its listen path.
func jwtAPIID(alg string) string { return "bench-jwt-" + strings.ToLower(alg) }
func jwtPath(alg string) string  { return "/jwt-" + strings.ToLower(alg) + "/" }

// Lease-mode limit: a lease of g requests lives until the GCRA bucket would
// have drained it (g periods past the key's TAT, see docs/limits.md), so
// leases pay off on keys that use a good part of their rate. The lease
// scenario's rule allows 10k/s with a burst no run exhausts: the load runs
// above the rate, the bucket fills, leases live long, and nothing is refused.
const (
	benchLeaseRate  = 10_000
	benchLeaseBurst = 1_000_000_000
)

func benchLimit(mode string) *model.Limit {
	if mode == model.LimitLease {
		return &model.Limit{Rate: benchLeaseRate, Burst: benchLeaseBurst, Per: model.Duration(time.Second), Mode: mode}
	}
	return &model.Limit{Rate: benchRate, Per: model.Duration(time.Second), Mode: mode}
}

func benchQuotaRule() *model.Quota {
	return &model.Quota{Max: benchQuota, Renewal: model.Duration(time.Hour)}
}

// churnAPI is version i of the churn API: its name changes, so every put is
// a real change that rebuilds the gateway's routing snapshot.
func churnAPI(upstream string, i int) *model.API {
	return &model.API{ID: churnID, Name: fmt.Sprintf("churn %d", i), ListenPath: "/churn/", StripListenPath: true,
		Upstream: model.Upstream{Targets: []string{"http://" + upstream}}, Auth: model.Auth{Mode: model.AuthAPIKey}}
}

// churnPolicy is version i of the churn policy: its rate changes.
func churnPolicy(i int) *model.Policy {
	return &model.Policy{ID: churnID, Access: []model.AccessRight{{API: churnID}},
		RateLimit: &model.Limit{Rate: int64(1000 + i), Per: model.Duration(time.Second)}}
}

// seed writes the benchmark APIs: keyless /open/; key auth with rate limit
// and quota in exact mode /full/ and in lease mode /lease/; keyless /ip/
// limited per client IP; /cost/, whose key's rate limit counts units
// reserved before forwarding and settled from the upstream's cost header;
// keyless /stream/, streaming event streams and bodies of 1 MiB or more;
// the same policy
// reached through a JWT's scope on /jwt-<alg>/ for each signer; and the
// churn API and policy.
func seed(ctx context.Context, st *store.Store, upstream string, signers []*jwtSigner) error {
	up := model.Upstream{Targets: []string{"http://" + upstream}}
	apis := []*model.API{
		{ID: "bench-open", ListenPath: "/open/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless}},
		{ID: "bench-full", ListenPath: "/full/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}},
		{ID: "bench-lease", ListenPath: "/lease/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}},
		{ID: "bench-ip", ListenPath: "/ip/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless},
			RateLimit: &model.Limit{Rate: benchRate, Per: model.Duration(time.Second), LimitBy: []string{model.LimitByClientIP}}},
		{ID: "bench-cost", ListenPath: "/cost/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}},
		{ID: "bench-stream", ListenPath: "/stream/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless},
			Streaming: &model.Streaming{ContentTypes: []string{"text/event-stream"}, MinBytes: 1 << 20}},
		churnAPI(upstream, 0),
	}
	policies := []*model.Policy{
		{ID: "bench-full", Access: []model.AccessRight{{API: "bench-full"}}, RateLimit: benchLimit(model.LimitExact), Quota: benchQuotaRule()},
		{ID: "bench-lease", Access: []model.AccessRight{{API: "bench-lease"}}, RateLimit: benchLimit(model.LimitLease), Quota: benchQuotaRule()},
		{ID: "bench-cost", Access: []model.AccessRight{{API: "bench-cost"}}, Quota: benchQuotaRule(),
			RateLimit: &model.Limit{Rate: benchRate, Per: model.Duration(time.Second), Units: &model.Units{
				From: model.UnitsResponseHeader, Header: costHeader, Reserve: costReserve}}},
		churnPolicy(0),
	}
	for _, s := range signers {
		id := jwtAPIID(s.alg)
		apis = append(apis, &model.API{ID: id, ListenPath: jwtPath(s.alg), StripListenPath: true, Upstream: up, Auth: s.jwtAuth(id)})
		policies = append(policies, &model.Policy{ID: id, Access: []model.AccessRight{{API: id}},
			RateLimit: benchLimit(model.LimitExact), Quota: benchQuotaRule()})
	}
	now := time.Now().UTC()
	keys := []*model.Key{
		{ID: "bench-key", Hash: model.HashKey([]byte(benchKey)), Policies: []string{"bench-full"}, CreatedAt: now},
		{ID: "bench-lease-key", Hash: model.HashKey([]byte(benchLeaseKey)), Policies: []string{"bench-lease"}, CreatedAt: now},
		{ID: "bench-cost-key", Hash: model.HashKey([]byte(benchCostKey)), Policies: []string{"bench-cost"}, CreatedAt: now},
	}
	for _, a := range apis {
		if errs := a.Validate(); len(errs) > 0 {
			return fmt.Errorf("seed api %s: %w", a.ID, errs.Err())
		}
		if _, err := storetest.PutAPI(ctx, st, a); err != nil {
			return fmt.Errorf("seed api %s: %w", a.ID, err)
		}
	}
	for _, p := range policies {
		if _, err := storetest.PutPolicy(ctx, st, p); err != nil {
			return fmt.Errorf("seed policy %s: %w", p.ID, err)
		}
	}
	for _, k := range keys {
		if _, err := storetest.PutKey(ctx, st, k); err != nil {
			return fmt.Errorf("seed key %s: %w", k.ID, err)
		}
	}
	return nil
}
