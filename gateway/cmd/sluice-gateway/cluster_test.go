package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestNodeOnRedisCluster wires a node from a configuration naming a Redis
// Cluster (redis.cluster_addrs): it loads its APIs, is ready, and enforces
// each API's limit exactly, for two APIs whose counters live on different
// primaries. The APIs fail closed, so a failing script would answer 503.
func TestNodeOnRedisCluster(t *testing.T) {
	t.Parallel()
	const limit, sent = 5, 8
	c := testutil.StartRedisCluster(t)
	nt := testutil.StartNATS(t)
	ln := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	upSrv := &http.Server{Addr: ln, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) })}
	go func() { _ = upSrv.ListenAndServe() }()
	t.Cleanup(func() { _ = upSrv.Close() })

	apis := []string{"a", ""}
	for i := 0; i < 100 && apis[1] == ""; i++ {
		id := fmt.Sprintf("b%d", i)
		if c.NodeFor(t, store.Layout{}.CounterPrefix(id)+"x") != c.NodeFor(t, store.Layout{}.CounterPrefix(apis[0])+"x") {
			apis[1] = id
		}
	}
	if apis[1] == "" {
		t.Fatal("no API found on another node than a")
	}
	st := store.New(c.Client(t), 0)
	for _, id := range apis {
		if _, err := storetest.PutAPI(context.Background(), st, &model.API{ID: id, ListenPath: "/" + id, Auth: model.Auth{Mode: model.AuthKeyless},
			Upstream: model.Upstream{Targets: []string{"http://" + ln}}, OnStoreError: "closed",
			RateLimit: &model.Limit{Rate: limit, Per: model.Duration(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t, "cluster-node")
	cfg.Redis.Addr = "127.0.0.1:1" // ignored: nothing listens there
	cfg.Redis.ClusterAddrs = c.Addrs()
	cfg.NATS.URL = nt.URL()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	startNode(t, cfg)
	expect(t, "http://"+cfg.OpsListen+"/ready", 200, "ready")
	for _, id := range apis {
		statuses := map[int]int{}
		for i := 0; i < sent; i++ {
			code, _, err := get("http://" + cfg.Listen + "/" + id)
			if err != nil {
				t.Fatal(err)
			}
			statuses[code]++
		}
		if statuses[200] != limit || statuses[429] != sent-limit {
			t.Fatalf("API %s: statuses %v, want %d × 200 and %d × 429", id, statuses, limit, sent-limit)
		}
	}
}
