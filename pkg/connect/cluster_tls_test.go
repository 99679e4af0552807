package connect

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// A Redis Cluster over TLS (client certificates required, the cluster bus
// on TLS too) is reached through the same redis: settings as a single
// Redis: seed addresses are TLS ports, the client follows the slots to
// every primary over TLS, and the store's cross-slot writes and reads
// work. A client without TLS gets nowhere on those ports.
func TestRedisClusterOverTLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ca := testutil.NewCA(t)
	c := testutil.StartRedisClusterTLS(t, ca)
	cl := ca.Client(t, "sluice")
	cfg := DefaultRedis()
	cfg.ClusterAddrs = c.TLSAddrs()
	cfg.TLS = TLSClient{Enabled: true, CAFile: ca.File, CertFile: cl.CertFile, KeyFile: cl.KeyFile}
	rdb := newClient(t, cfg)
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client %T, want a cluster client", rdb)
	}

	// Keys on every primary, written and read over TLS.
	primaries := map[string]bool{}
	for i := 0; i < 60; i++ {
		key := fmt.Sprintf("k%d", i)
		if err := setGet(ctx, cc, key); err != nil {
			t.Fatalf("%s over TLS: %v", key, err)
		}
		primaries[c.NodeFor(t, key)] = true
	}
	if len(primaries) != 3 {
		t.Fatalf("keys reached %d primaries, want 3", len(primaries))
	}
	var tlsConns atomic.Int32 // ForEachMaster calls on one goroutine per primary
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		for _, a := range c.TLSAddrs() {
			if m.Options().Addr == a {
				tlsConns.Add(1)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tlsConns := tlsConns.Load(); tlsConns != 3 {
		t.Fatalf("%d of 3 primaries reached on their TLS ports", tlsConns)
	}

	// The store on the TLS cluster, in a namespace: an API written (one
	// atomic script on the config slot) is read back.
	st := store.NewIn(store.NewLayout("tlsenv"), cc, 0)
	api := &model.API{ID: "orders", ListenPath: "/orders", Auth: model.Auth{Mode: model.AuthKeyless},
		Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}}
	if _, err := storetest.PutAPI(ctx, st, api); err != nil {
		t.Fatalf("put api over TLS: %v", err)
	}
	snap, err := st.LoadSnapshot(ctx)
	if err != nil || len(snap.APIs) != 1 || snap.APIs[0].ListenPath != "/orders" || snap.Version != 1 {
		t.Fatalf("snapshot over TLS: %+v, %v", snap, err)
	}

	// Without TLS the TLS ports answer nothing usable.
	plain := DefaultRedis()
	plain.ClusterAddrs = c.TLSAddrs()
	plain.DialTimeout, plain.ReadTimeout = time.Second, time.Second
	prdb := newClient(t, plain)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := prdb.Ping(pctx).Err(); err == nil {
		t.Fatal("a plain client reached a TLS-only port")
	}
}
