package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestNodeUnderLeastPrivilegeACL runs a node as the sluice-gateway user of
// deployments/redis/users.acl, unchanged: it loads the configuration,
// authenticates a key and enforces its rate limit and quota exactly, and
// Redis refused it nothing. The same user cannot write the configuration.
func TestNodeUnderLeastPrivilegeACL(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedisACL(t, "../../../deployments/redis/users.acl")
	nt := testutil.StartNATS(t)
	up := upstream(t)
	st := store.New(r.Client(t), 0)
	ctx := context.Background()
	if _, err := storetest.PutAPI(ctx, st, &model.API{ID: "a", ListenPath: "/a", Auth: model.Auth{Mode: model.AuthAPIKey},
		Upstream: model.Upstream{Targets: []string{"http://" + up}}}); err != nil {
		t.Fatal(err)
	}
	secret := "acl-test-key-0123456789"
	if _, err := storetest.PutKey(ctx, st, &model.Key{ID: "k", Hash: model.HashKey([]byte(secret)), Access: []model.AccessRight{{API: "a"}},
		RateLimit: &model.Limit{Rate: 1000, Per: model.Duration(60e9)}, Quota: &model.Quota{Max: 5, Renewal: model.Duration(3600e9)}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "acl-node")
	cfg.Redis.Addr = r.Addr()
	cfg.Redis.Username, cfg.Redis.Password = "sluice-gateway", "change-me-gateway"
	cfg.NATS.URL = nt.URL()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	startNode(t, cfg)
	expect(t, "http://"+cfg.OpsListen+"/ready", 200, "ready")
	codes := map[int]int{}
	for range 8 {
		req, _ := http.NewRequest("GET", "http://"+cfg.Listen+"/a/x", nil)
		req.Header.Set("X-API-Key", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	// A change made after start reaches the node through the changelog,
	// and an API limit in lease mode takes its leases.
	if _, err := storetest.PutAPI(ctx, st, &model.API{ID: "b", ListenPath: "/b", Auth: model.Auth{Mode: model.AuthKeyless},
		RateLimit: &model.Limit{Rate: 1000, Per: model.Duration(1e9), Mode: model.LimitLease},
		Upstream:  model.Upstream{Targets: []string{"http://" + up}}}); err != nil {
		t.Fatal(err)
	}
	expect(t, "http://"+cfg.Listen+"/b/x", 200, "")
	if d := r.ACLDenials(t); len(d) > 0 {
		t.Fatalf("Redis refused the gateway user: %s", strings.Join(d, "\n"))
	}
	if codes[200] != 5 || codes[429] != 3 {
		t.Fatalf("statuses %v, want 5 served and 3 over the quota", codes)
	}
	gw := r.ClientAs(t, "sluice-gateway", "change-me-gateway")
	if err := gw.HSet(ctx, st.Layout().APIs(), "evil", "{}").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("gateway user wrote the configuration: %v", err)
	}
}
