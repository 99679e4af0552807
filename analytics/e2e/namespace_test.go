package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// Both environments use the same API ids, policy id, key id and key value.
const (
	nsAPI     = "orders"
	nsKey     = "ns-shared-key-0123456789abcdef"
	nsToken   = "ns-admin-token-0123456789abcdef"
	nsRenewal = time.Hour
)

// environment is one Sluice environment: a syncer, a gateway node and an
// analytics worker configured with one namespace, sharing Redis and NATS
// with the other environment.
type environment struct {
	ns     string
	quota  int64 // the policy's quota on nsAPI
	sent   int   // keyed requests the test sends to nsAPI
	syncer string
	gw     *gatewayProc
	worker *workerProc

	mu      sync.Mutex
	events  map[string]int64 // usage events seen on <ns>.usage.> by API
	rollups map[int64]int64  // nsAPI requests by minute, from <ns>.rollup.>
	foreign []string         // messages of another API id layout (none expected)
}

// TestNamespacesIsolateEnvironments runs two complete environments,
// staging and production, on one redis-server and one NATS server, as real
// processes: each a syncer, a gateway node and an analytics worker. The
// environments hold the same API, policy and key ids and the same key
// value, with different quotas. Each gateway sees only its own
// environment's config, the quota counters do not mix, usage events and
// rollups are counted in their own environment only, and every Redis key
// and JetStream stream carries one of the two namespaces.
func TestNamespacesIsolateEnvironments(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sluice binaries")
	}
	bin := buildBinaries(t, t.TempDir())
	rd, nt := testutil.StartRedis(t), testutil.StartNATS(t)
	upstream := httptest.NewServer(http.HandlerFunc(upstreamHandler))
	t.Cleanup(upstream.Close)
	nc := nt.Conn(t)
	envs := []*environment{
		{ns: "staging", quota: 5, sent: 9},
		{ns: "production", quota: 3, sent: 7},
	}
	for _, e := range envs {
		e.listen(t, nc)
		e.start(t, bin, rd.Addr(), nt.URL())
	}
	for _, e := range envs {
		e.seed(t, upstream.URL, e.ns == "staging")
	}
	for _, e := range envs {
		e.waitRoutes(t)
	}
	staging, production := envs[0], envs[1]

	t.Run("config", func(t *testing.T) {
		if got := staging.get(t, "/only/x", ""); got != http.StatusOK {
			t.Errorf("staging gateway: staging-only API answered %d, want 200", got)
		}
		if got := production.get(t, "/only/x", ""); got != http.StatusNotFound {
			t.Errorf("production gateway: staging-only API answered %d, want 404", got)
		}
		if got := production.admin(t, http.MethodGet, "/v1/apis/only", nil); got != http.StatusNotFound {
			t.Errorf("production syncer: GET /v1/apis/only answered %d, want 404", got)
		}
	})

	t.Run("counters", func(t *testing.T) {
		for _, e := range envs {
			ok, limited := 0, 0
			for range e.sent {
				switch s := e.get(t, "/orders/x", nsKey); s {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					limited++
				default:
					t.Fatalf("%s: keyed request answered %d", e.ns, s)
				}
			}
			if int64(ok) != e.quota || ok+limited != e.sent {
				t.Errorf("%s: %d accepted, %d refused of %d; want exactly its quota %d accepted", e.ns, ok, limited, e.sent, e.quota)
			}
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, e := range envs {
			want := int64(e.sent)
			testutil.WaitFor(t, 30*time.Second, func() error {
				tot, _, err := e.worker.totals(nsAPI)
				if err != nil {
					return err
				}
				if tot.Requests != want || tot.Limited != want-e.quota {
					return fmt.Errorf("%s worker totals of %s: %v, want %d requests, %d limited", e.ns, nsAPI, tot, want, want-e.quota)
				}
				if n := e.eventsOf(nsAPI); n != want {
					return fmt.Errorf("%s: %d usage events of %s on NATS, want %d", e.ns, n, nsAPI, want)
				}
				return nil
			})
		}
		// Minutes close one grace period after they end: up to about a
		// minute and a half after the requests.
		for _, e := range envs {
			testutil.WaitFor(t, 100*time.Second, func() error {
				if n := e.rolledUp(); n != int64(e.sent) {
					return fmt.Errorf("%s: rollups of %s count %d requests, want %d", e.ns, nsAPI, n, e.sent)
				}
				return nil
			})
		}
		for _, e := range envs {
			e.mu.Lock()
			if len(e.foreign) > 0 {
				t.Errorf("%s: messages outside the namespace's layout: %v", e.ns, e.foreign)
			}
			e.mu.Unlock()
		}
	})

	t.Run("every key and stream carries a namespace", func(t *testing.T) {
		ctx := context.Background()
		seen := map[string]int{}
		iter := rd.Client(t).Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			ns, rest, _ := strings.Cut(k, ":")
			if ns != staging.ns && ns != production.ns {
				t.Errorf("Redis key %q carries neither namespace", k)
				continue
			}
			for _, tag := range []string{"{cfg}", "{api:" + nsAPI + "}", "{usage:" + nsAPI + "}"} {
				if strings.HasPrefix(rest, tag+":") {
					seen[ns+":"+tag]++
				}
			}
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			for _, tag := range []string{"{cfg}", "{api:" + nsAPI + "}", "{usage:" + nsAPI + "}"} {
				if seen[e.ns+":"+tag] == 0 {
					t.Errorf("no %s:%s key: the environment did not write where the test looks", e.ns, tag)
				}
			}
		}
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		var streams []string
		for name := range js.StreamNames(ctx).Name() {
			streams = append(streams, name)
		}
		sort.Strings(streams)
		if want := []string{"PRODUCTION_USAGE", "STAGING_USAGE"}; strings.Join(streams, " ") != strings.Join(want, " ") {
			t.Errorf("JetStream streams %v, want %v", streams, want)
		}
	})
}

// listen counts, from core NATS, the usage events and rollups published in
// the environment's namespace.
func (e *environment) listen(t *testing.T, nc *nats.Conn) {
	t.Helper()
	e.events, e.rollups = map[string]int64{}, map[int64]int64{}
	names := bus.NewNames(e.ns)
	_, err := nc.Subscribe(names.UsageWildcard(), func(m *nats.Msg) {
		api := strings.TrimPrefix(m.Subject, names.UsagePrefix())
		_ = usage.DecodeBatch(m.Data, func(ev *usage.Event) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if ev.API != api && !(ev.API == "" && api == "_") {
				e.foreign = append(e.foreign, fmt.Sprintf("event of API %q on %s", ev.API, m.Subject))
			}
			e.events[ev.API]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = nc.Subscribe(names.RollupWildcard(), func(m *nats.Msg) {
		var r rollup.Rollup
		e.mu.Lock()
		defer e.mu.Unlock()
		if err := json.Unmarshal(m.Data, &r); err != nil || m.Subject != names.RollupSubject(r.API) {
			e.foreign = append(e.foreign, fmt.Sprintf("rollup %q on %s (%v)", r.API, m.Subject, err))
			return
		}
		if r.API == nsAPI {
			e.rollups[r.Minute] += r.Requests // a minute is published once, when it closes
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (e *environment) eventsOf(api string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.events[api]
}

func (e *environment) rolledUp() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n int64
	for _, r := range e.rollups {
		n += r
	}
	return n
}

// start runs the environment's syncer, gateway node and analytics worker.
func (e *environment) start(t *testing.T, bin binaries, redisAddr, natsURL string) {
	t.Helper()
	common := []string{
		"SLUICE_REDIS_ADDR=" + redisAddr, "SLUICE_REDIS_NAMESPACE=" + e.ns,
		"SLUICE_NATS_URL=" + natsURL, "SLUICE_NATS_NAMESPACE=" + e.ns,
		"SLUICE_LOG_FORMAT=json", "SLUICE_LOG_LEVEL=info",
	}
	e.syncer = freeAddr(t)
	sy := startProc(t, e.ns+"-syncer", bin.Syncer, append([]string{
		"SLUICE_LISTEN=" + e.syncer, "SLUICE_ADMIN_TOKEN=" + nsToken,
	}, common...))
	e.gw = &gatewayProc{addr: freeAddr(t), ops: freeAddr(t)}
	e.gw.proc = startProc(t, e.ns+"-gw", bin.Gateway, append([]string{
		"SLUICE_NODE_ID=" + e.ns + "-gw", "SLUICE_LISTEN=" + e.gw.addr, "SLUICE_OPS_LISTEN=" + e.gw.ops,
		"SLUICE_USAGE_FLUSH_INTERVAL=20ms", "SLUICE_AUTH_LOOKUP_TIMEOUT=2s", "SLUICE_LIMITS_TIMEOUT=2s",
		"SLUICE_SYNC_CHECK_INTERVAL=500ms", "SLUICE_SHUTDOWN_TIMEOUT=5s",
	}, common...))
	e.worker = &workerProc{addr: freeAddr(t)}
	e.worker.proc = startProc(t, e.ns+"-analytics", bin.Analytics, append([]string{
		"SLUICE_LISTEN=" + e.worker.addr, "SLUICE_AUTH_TOKEN=" + usageToken, "SLUICE_NATS_FETCH_WAIT=100ms",
		"SLUICE_AGGREGATION_GRACE=1s", "SLUICE_AGGREGATION_CLOSE_INTERVAL=250ms",
	}, common...))
	ctx := context.Background()
	for _, w := range []struct {
		p   *proc
		url string
	}{{sy, "http://" + e.syncer + "/ready"}, {e.gw.proc, "http://" + e.gw.ops + "/ready"}, {e.worker.proc, "http://" + e.worker.addr + "/ready"}} {
		if err := w.p.WaitReady(ctx, w.url, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// seed writes the environment's config through its syncer's admin API:
// the keyed API, a policy with the environment's quota, the shared key,
// in staging a staging-only API, and last a keyless ping API (the gateway
// applies versions in order, so ping routing means it has everything).
func (e *environment) seed(t *testing.T, upstreamURL string, stagingOnly bool) {
	t.Helper()
	up := model.Upstream{Targets: []string{upstreamURL}}
	apis := []model.API{{ID: nsAPI, ListenPath: "/orders/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}}}
	if stagingOnly {
		apis = append(apis, model.API{ID: "only", ListenPath: "/only/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless}})
	}
	for _, a := range apis {
		e.mustCreate(t, "/v1/apis", a)
	}
	e.mustCreate(t, "/v1/policies", model.Policy{ID: "orders-quota", Access: []model.AccessRight{{API: nsAPI}},
		Quota: &model.Quota{Max: e.quota, Renewal: model.Duration(nsRenewal)}})
	e.mustCreate(t, "/v1/keys", map[string]any{"id": "shared", "key": nsKey, "policies": []string{"orders-quota"}})
	e.mustCreate(t, "/v1/apis", model.API{ID: "ping", ListenPath: "/ping/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless}})
}

func (e *environment) mustCreate(t *testing.T, path string, body any) {
	t.Helper()
	if got := e.admin(t, http.MethodPost, path, body); got != http.StatusCreated {
		t.Fatalf("%s: POST %s answered %d, want 201", e.ns, path, got)
	}
}

// admin calls the environment's syncer and returns the status.
func (e *environment) admin(t *testing.T, method, path string, body any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, "http://"+e.syncer+path, rd)
	req.Header.Set("Authorization", "Bearer "+nsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", e.ns, method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		t.Logf("%s: %s %s: %d %s", e.ns, method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// waitRoutes waits until the gateway routes the ping API, written last.
func (e *environment) waitRoutes(t *testing.T) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() error {
		if s := e.get(t, "/ping/x", ""); s != http.StatusOK {
			return fmt.Errorf("%s gateway: ping answered %d", e.ns, s)
		}
		return nil
	})
}

// get sends GET path to the environment's gateway, with key as a bearer
// token when set, and returns the status.
func (e *environment) get(t *testing.T, path, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.gw.addr+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", e.ns, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
