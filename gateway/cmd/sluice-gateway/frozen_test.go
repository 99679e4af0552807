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

// TestFrozenRedisCostsTheDeadline freezes Redis (SIGSTOP: connections stay
// open, nothing answers) and checks that a request whose key lookup or
// rate limit needs Redis is answered 503 within its configured deadline
// (25ms) plus a margin, not after the Redis client's read timeout (3s
// here). The margin (300ms) is a correctness bound, not a measurement.
func TestFrozenRedisCostsTheDeadline(t *testing.T) {
	t.Parallel()
	const (
		deadline = 25 * time.Millisecond
		bound    = 300 * time.Millisecond
	)
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	ln := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	upSrv := &http.Server{Addr: ln, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) })}
	go func() { _ = upSrv.ListenAndServe() }()
	t.Cleanup(func() { _ = upSrv.Close() })

	st := store.New(r.Client(t), 0)
	up := model.Upstream{Targets: []string{"http://" + ln}}
	for _, a := range []*model.API{
		{ID: "limited", ListenPath: "/limited", Auth: model.Auth{Mode: model.AuthKeyless}, Upstream: up,
			OnStoreError: "closed", RateLimit: &model.Limit{Rate: 1000, Per: model.Duration(time.Hour)}},
		{ID: "keyed", ListenPath: "/keyed", Auth: model.Auth{Mode: model.AuthAPIKey}, Upstream: up, OnStoreError: "closed"},
	} {
		if _, err := storetest.PutAPI(context.Background(), st, a); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t, "frozen-node")
	cfg.Redis.Addr = r.Addr()
	cfg.Redis.ReadTimeout, cfg.Redis.WriteTimeout = 3*time.Second, 3*time.Second
	cfg.Limits.Timeout = deadline
	cfg.Auth.LookupTimeout = deadline
	cfg.NATS.URL = nt.URL()
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	startNode(t, cfg)
	expect(t, "http://"+cfg.OpsListen+"/ready", 200, "ready")
	expect(t, "http://"+cfg.Listen+"/limited", 200, "hi")
	expect(t, "http://"+cfg.Listen+"/keyed", 401, "")

	r.Pause()
	t.Cleanup(r.Resume)
	client := &http.Client{Timeout: 10 * time.Second}
	for i, tc := range []struct{ name, path, key string }{
		{"rate limit", "/limited", ""},
		{"key lookup", "/keyed", "never-seen-key-0123456789-a"},
		{"key lookup again", "/keyed", "never-seen-key-0123456789-b"},
	} {
		req, _ := http.NewRequest("GET", "http://"+cfg.Listen+tc.path, nil)
		if tc.key != "" {
			req.Header.Set("X-API-Key", tc.key)
		}
		start := time.Now()
		resp, err := client.Do(req)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%d %s: %v", i, tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || took > bound {
			t.Errorf("%s with Redis frozen: %d after %v, want 503 within %v (deadline %v)", tc.name, resp.StatusCode, took, bound, deadline)
		}
		t.Logf("%s with Redis frozen: %d after %v", tc.name, resp.StatusCode, took)
	}
}
