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

	"github.com/sluicegw/sluice/gateway/internal/config"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
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
func testConfig(t *testing.T, nodeID string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.NodeID = nodeID
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfg.OpsListen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	return cfg
}

// startNode builds and starts a node from cfg, shut down when the test ends.
func startNode(t *testing.T, cfg config.Config) {
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
	if _, err := st.PutAPI(context.Background(), &model.API{ID: "a", ListenPath: "/a", Auth: model.Auth{Mode: model.AuthKeyless},
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

	// Redis down: not ready; back: ready.
	r.Stop()
	expect(t, ops+"/ready", 503, "not_ready")
	r.Start()
	expect(t, ops+"/ready", 200, "ready")
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
	if _, err := st.PutAPI(ctx, &model.API{ID: "a", ListenPath: "/a", Upstream: model.Upstream{Targets: []string{"http://" + ln}},
		Auth: model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
			Algorithms: []string{"ES256"}, Keys: model.JWTKeys{OIDCIssuer: o.Issuer()},
			Policies: model.JWTPolicies{Default: []string{"all"}}, ForwardClaims: map[string]string{"sub": "X-User-Id"},
		}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutPolicy(ctx, &model.Policy{ID: "all", Access: []model.AccessRight{{API: "a"}}}); err != nil {
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
	errb.Reset()
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "SLUICE_REDIS_ADDR") || !strings.Contains(errb.String(), "SLUICE_JWT_FETCH_TIMEOUT") || !strings.Contains(errb.String(), "-check-config") {
		t.Fatalf("help: %d %s", code, errb.String())
	}
}
