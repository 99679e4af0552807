package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestACLScopedToNamespace: the users of deployments/redis/users.acl,
// with their key patterns moved from the default namespace to one
// environment's (~sluice:{cfg}:* becomes ~staging:{cfg}:*), write their
// own environment and are denied the other's keys on the same Redis.
func TestACLScopedToNamespace(t *testing.T) {
	t.Parallel()
	shipped, err := os.ReadFile("../../deployments/redis/users.acl")
	if err != nil {
		t.Fatal(err)
	}
	var acl strings.Builder
	for _, ns := range []string{"staging", "production"} {
		for _, line := range strings.Split(string(shipped), "\n") {
			if !strings.HasPrefix(line, "user sluice-syncer ") {
				continue
			}
			line = strings.Replace(line, "user sluice-syncer ", "user "+ns+"-syncer ", 1)
			acl.WriteString(strings.ReplaceAll(line, "~sluice:", "~"+ns+":") + "\n")
		}
	}
	acl.WriteString("user default on nopass ~* &* +@all\n")
	path := filepath.Join(t.TempDir(), "users.acl")
	if err := os.WriteFile(path, []byte(acl.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := testutil.StartRedisACL(t, path)
	ctx := context.Background()
	staging := store.NewIn(store.NewLayout("staging"), r.ClientAs(t, "staging-syncer", "change-me-syncer"), 0)
	if _, err := storetest.PutPolicy(ctx, staging, &model.Policy{ID: "p", Access: []model.AccessRight{}}); err != nil {
		t.Fatalf("staging user writing staging: %v", err)
	}
	intruder := store.NewIn(store.NewLayout("production"), r.ClientAs(t, "staging-syncer", "change-me-syncer"), 0)
	if _, err := storetest.PutPolicy(ctx, intruder, &model.Policy{ID: "p", Access: []model.AccessRight{}}); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("staging user writing production: %v, want NOPERM", err)
	}
	if _, err := intruder.Version(ctx); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("staging user reading production: %v, want NOPERM", err)
	}
	production := store.NewIn(store.NewLayout("production"), r.ClientAs(t, "production-syncer", "change-me-syncer"), 0)
	if v, err := production.Version(ctx); err != nil || v != 0 {
		t.Fatalf("production untouched: version %d, %v", v, err)
	}
}
