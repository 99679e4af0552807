package main

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestSyncerUnderLeastPrivilegeACL runs a syncer as the sluice-syncer user
// of deployments/redis/users.acl, unchanged: every kind of admin write and
// read works and Redis refuses it nothing; the same user cannot touch the
// rate-limit counters.
func TestSyncerUnderLeastPrivilegeACL(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedisACL(t, "../../../deployments/redis/users.acl")
	n := testutil.StartNATS(t)
	u := startSyncers(t, 1, r.Addr(), n.URL(), "SLUICE_REDIS_USERNAME=sluice-syncer", "SLUICE_REDIS_PASSWORD=change-me-syncer")[0]
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v1/apis", apiBody("a", "/a/"), 201},
		{"PUT", "/v1/apis/a", apiBody("a", "/a2/"), 200},
		{"POST", "/v1/policies", `{"id":"p","access":[{"api":"a"}],"rate_limit":{"rate":5,"per":"1s"}}`, 201},
		{"POST", "/v1/keys", `{"id":"k","policies":["p"]}`, 201},
		{"POST", "/v1/keys/k/rotate", "", 200},
		{"GET", "/v1/apis", "", 200},
		{"GET", "/v1/keys/k", "", 200},
		{"GET", "/v1/status", "", 200},
		{"GET", "/v1/audit", "", 200},
		{"POST", "/v1/apply", `{"apis":[` + apiBody("b", "/b/") + `],"dry_run":true}`, 200},
		{"POST", "/v1/apply", `{"apis":[` + apiBody("b", "/b/") + `]}`, 200},
		{"DELETE", "/v1/keys/k", "", 204},
		{"DELETE", "/v1/policies/p", "", 204},
		{"DELETE", "/v1/apis/a", "", 204},
	} {
		if got := send(t, c.method, u+c.path, c.body); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	if d := r.ACLDenials(t); len(d) > 0 {
		t.Fatalf("Redis refused the syncer user: %s", strings.Join(d, "\n"))
	}
	sy := r.ClientAs(t, "sluice-syncer", "change-me-syncer")
	if err := sy.Set(context.Background(), (store.Layout{}).CounterPrefix("a")+"k", "1", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("syncer user wrote a counter: %v", err)
	}
}
