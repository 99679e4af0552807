package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/settings"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// testConfig is the default configuration with the node's listeners on
// free loopback ports.
func testConfig(t *testing.T, nodeID string) settings.Config {
	t.Helper()
	cfg := settings.Default()
	cfg.NodeID = nodeID
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfg.OpsListen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	return cfg
}

// startNode builds and starts a node from cfg, shut down when the test ends.
func startNode(t *testing.T, cfg settings.Config) {
	t.Helper()
	n, err := newNode(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
}

func expect(t *testing.T, url string, status int, contains string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		got, body, err := get(url)
		if err != nil {
			return err
		}
		if got != status || !strings.Contains(body, contains) {
			return fmt.Errorf("%s: %d %q", url, got, body)
		}
		return nil
	})
}

func TestNodeOpsAndNATSDown(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	ln := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	upSrv := &http.Server{Addr: ln, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) })}
	go func() { _ = upSrv.ListenAndServe() }()
	t.Cleanup(func() { _ = upSrv.Close() })

	st := store.New(r.Client(t), 0)
	if _, err := storetest.PutAPI(context.Background(), st, &model.API{ID: "a", ListenPath: "/a", Auth: model.Auth{Mode: model.AuthKeyless},
		Upstream: model.Upstream{Targets: []string{"http://" + ln}}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "test-node")
	cfg.Redis.Addr = r.Addr()
	cfg.NATS.URL = nt.URL()
	cfg.Usage.BufferSize = 8
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	startNode(t, cfg)
	ops := "http://" + cfg.OpsListen
	expect(t, ops+"/health", 200, "ok")
	expect(t, ops+"/ready", 200, "ready")
	expect(t, "http://"+cfg.Listen+"/a", 200, "hi")
	expect(t, ops+"/metrics", 200, `sluice_requests_total{api="a",status_class="2xx"}`)
	expect(t, ops+"/metrics", 200, "sluice_config_version 1")
	if _, body, err := get(ops + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		testutil.LintMetrics(t, body)
	}

	// NATS down: traffic is unaffected; once the buffer is full, events are
	// dropped and counted.
	nt.Stop()
	for i := 0; i < 30; i++ {
		expect(t, "http://"+cfg.Listen+"/a", 200, "hi")
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		_, body, err := get(ops + "/metrics")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "sluice_usage_events_dropped_total") && !strings.HasSuffix(line, " 0") {
				return nil
			}
		}
		return fmt.Errorf("no drops counted")
	})

	// Redis down: still ready (the node serves what it knows); /health and
	// the metrics say Redis is down. Back: up again.
	r.Stop()
	expect(t, ops+"/health", 200, `"redis":"down`)
	expect(t, ops+"/metrics", 200, `sluice_dependency_up{dependency="redis"} 0`)
	expect(t, ops+"/ready", 200, "ready")
	expect(t, "http://"+cfg.Listen+"/a", 200, "hi")
	r.Start()
	expect(t, ops+"/health", 200, `"redis":"up"`)
	expect(t, ops+"/metrics", 200, `sluice_dependency_up{dependency="redis"} 1`)
}

// upstream serves "hi" on a free loopback port and returns its address.
func upstream(t *testing.T) string {
	t.Helper()
	ln := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	srv := &http.Server{Addr: ln, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) })}
	go func() { _ = srv.ListenAndServe() }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln
}

// A node started while Redis and NATS are both down comes up: it answers
// 503 not_ready (and /ready fails) until its first snapshot, then loads it
// in the background once they come, and serves.
func TestNodeStartsBeforeRedisAndNATS(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	up := upstream(t)
	st := store.New(r.Client(t), 0)
	if _, err := storetest.PutAPI(context.Background(), st, &model.API{ID: "a", ListenPath: "/a", Auth: model.Auth{Mode: model.AuthKeyless},
		Upstream: model.Upstream{Targets: []string{"http://" + up}}}); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	nt.Stop()

	cfg := testConfig(t, "early-node")
	cfg.Redis.Addr = r.Addr()
	cfg.NATS.URL = nt.URL()
	startNode(t, cfg)
	ops, traffic := "http://"+cfg.OpsListen, "http://"+cfg.Listen+"/a"
	expect(t, ops+"/health", 200, `"redis":"down`)
	expect(t, ops+"/ready", 503, "not_ready")
	expect(t, traffic, 503, `{"error":{"code":"not_ready"`)

	r.Start()
	nt.Start()
	expect(t, ops+"/ready", 200, "ready")
	expect(t, traffic, 200, "hi")
	expect(t, ops+"/health", 200, `"nats":"up"`)
}

// With Redis down, a fail-open API keeps serving a key its node knows past
// session_ttl, for the whole outage (auth.max_stale 0); a fail-closed API
// refuses it with 503 once the session needs re-reading.
func TestNodeServesKnownKeysThroughStoreOutage(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	up := upstream(t)
	st := store.New(r.Client(t), 0)
	ctx := context.Background()
	for _, a := range []model.API{
		{ID: "open", ListenPath: "/open", Auth: model.Auth{Mode: model.AuthAPIKey}, Upstream: model.Upstream{Targets: []string{"http://" + up}}},
		{ID: "closed", ListenPath: "/closed", OnStoreError: model.StoreErrorClosed, Auth: model.Auth{Mode: model.AuthAPIKey},
			Upstream: model.Upstream{Targets: []string{"http://" + up}}},
	} {
		if _, err := storetest.PutAPI(ctx, st, &a); err != nil {
			t.Fatal(err)
		}
	}
	secret := "outage-key-0123456789"
	if _, err := storetest.PutKey(ctx, st, &model.Key{ID: "k", Hash: model.HashKey([]byte(secret)),
		Access: []model.AccessRight{{API: "open"}, {API: "closed"}}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "outage-node")
	cfg.Redis.Addr = r.Addr()
	cfg.NATS.URL = nt.URL()
	cfg.Auth.SessionTTL = 100 * time.Millisecond
	startNode(t, cfg)
	ops := "http://" + cfg.OpsListen
	call := func(path string) (int, string, error) {
		req, _ := http.NewRequest("GET", "http://"+cfg.Listen+path, nil)
		req.Header.Set("X-API-Key", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	expect(t, ops+"/ready", 200, "ready")
	for _, p := range []string{"/open", "/closed"} {
		if code, body, err := call(p); code != 200 || err != nil {
			t.Fatalf("%s before the outage: %d %s %v", p, code, body, err)
		}
	}

	r.Stop()
	// Every request to the fail-open API is served, until the node has
	// served the session past its TTL (counted) several times.
	var served int
	testutil.WaitFor(t, 20*time.Second, func() error {
		code, body, err := call("/open")
		if err != nil {
			return err
		}
		if code != 200 {
			t.Fatalf("fail-open API during the outage: %d %s after %d served", code, body, served)
		}
		served++
		_, m, err := get(ops + "/metrics")
		if err != nil {
			return err
		}
		if stale := metricValue(m, "sluice_auth_stale_sessions_total"); stale < 5 {
			return fmt.Errorf("%v stale sessions served so far", stale)
		}
		return nil
	})
	expect(t, ops+"/ready", 200, "ready")
	if code, body, _ := call("/closed"); code != 503 || !strings.Contains(body, "store_unavailable") {
		t.Fatalf("fail-closed API during the outage: %d %s", code, body)
	}
	r.Start()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if code, body, err := call("/closed"); code != 200 || err != nil {
			return fmt.Errorf("fail-closed API after the outage: %d %s %v", code, body, err)
		}
		return nil
	})
}

// metricValue returns the value of an unlabelled metric in a Prometheus
// text exposition, or -1.
func metricValue(exposition, name string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// A node wired from its configuration verifies tokens of an OIDC issuer
// and counts them in its metrics.
func TestNodeJWT(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	o := testutil.StartOIDC(t)
	ln := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	upSrv := &http.Server{Addr: ln, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hi " + r.Header.Get("X-User-Id")))
	})}
	go func() { _ = upSrv.ListenAndServe() }()
	t.Cleanup(func() { _ = upSrv.Close() })

	st := store.New(r.Client(t), 0)
	ctx := context.Background()
	if _, err := storetest.PutAPI(ctx, st, &model.API{ID: "a", ListenPath: "/a", Upstream: model.Upstream{Targets: []string{"http://" + ln}},
		Auth: model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
			Algorithms: []string{"ES256"}, Keys: model.JWTKeys{OIDCIssuer: o.Issuer()},
			Policies: model.JWTPolicies{Default: []string{"all"}}, ForwardClaims: map[string]string{"sub": "X-User-Id"},
		}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.PutPolicy(ctx, st, &model.Policy{ID: "all", Access: []model.AccessRight{{API: "a"}}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "jwt-node")
	cfg.Redis.Addr = r.Addr()
	cfg.NATS.URL = nt.URL()
	cfg.JWT.FetchTimeout = 2 * time.Second
	startNode(t, cfg)
	ops := "http://" + cfg.OpsListen
	expect(t, ops+"/ready", 200, "ready")
	tok := o.Sign("ES256", map[string]any{"iss": o.Issuer(), "sub": "erin", "exp": time.Now().Add(time.Hour).Unix()})
	testutil.WaitFor(t, 10*time.Second, func() error {
		req, _ := http.NewRequest("GET", "http://"+cfg.Listen+"/a", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "hi erin" {
			return fmt.Errorf("%d %q", resp.StatusCode, b)
		}
		return nil
	})
	expect(t, "http://"+cfg.Listen+"/a", 401, "token_missing")
	expect(t, ops+"/metrics", 200, `sluice_jwt_verifications_total{result="valid"} 1`)
	expect(t, ops+"/metrics", 200, `sluice_jwt_key_fetches_total{result="ok"}`)
}

func TestCheckConfigAndHelp(t *testing.T) {
	t.Setenv("SLUICE_REDIS_ADDR", "nope")
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config", "--listen", "bad"}, &out, &errb); code == 0 {
		t.Fatal("invalid config accepted")
	}
	for _, f := range []string{"listen:", "redis.addr:"} {
		if !strings.Contains(errb.String(), f) {
			t.Errorf("problem for %s not printed: %s", f, errb.String())
		}
	}
	out.Reset()
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "SLUICE_REDIS_ADDR") || !strings.Contains(out.String(), "SLUICE_JWT_FETCH_TIMEOUT") || !strings.Contains(out.String(), "-check-config") {
		t.Fatalf("help: %d %s", code, out.String())
	}
}
