package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/config"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

type env struct {
	redis *testutil.Redis
	nats  *testutil.NATS
	js    jetstream.JetStream
	nc    *nats.Conn
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, testutil.StartRedis(t))
}

// newEnvWith is newEnv on the redis-server r.
func newEnvWith(t *testing.T, r *testutil.Redis) *env {
	t.Helper()
	e := &env{redis: r, nats: testutil.StartNATS(t)}
	e.nc = e.nats.Conn(t)
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	if _, err := bus.CreateUsageStream(context.Background(), js, bus.Names{}, bus.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) config() config.Config {
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.Redis.Addr = e.redis.Addr()
	c.NATS.URL = e.nats.URL()
	c.NATS.AckWait = time.Second
	c.NATS.FetchWait = 100 * time.Millisecond
	c.Aggregation.DedupTTL = time.Hour
	c.UsageStream.MaxAge = time.Hour // within dedup_ttl, as Validate requires
	c.Aggregation.CloseInterval = 50 * time.Millisecond
	c.Log.Level = "warn"
	c.Auth.Token = testToken
	return c
}

// testToken is the workers' auth.token in these tests.
const testToken = "analytics-test-token-0123456789"

// get sends GET with the token.
func get(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}

func (e *env) start(t *testing.T, cfg config.Config, opts ...Option) *Service {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), opts...)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// publish sends events of one API as one batch with the given message id.
func (e *env) publish(t *testing.T, api, msgID string, evs []usage.Event) {
	t.Helper()
	var data []byte
	for i := range evs {
		data = usage.AppendJSON(data, &evs[i])
	}
	m := nats.NewMsg(bus.Names{}.UsageSubject(api))
	m.Data = data
	m.Header.Set(usage.HeaderVersion, usage.Version)
	m.Header.Set(usage.HeaderMsgID, msgID)
	testutil.WaitFor(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := e.js.PublishMsg(ctx, m)
		return err
	})
}

// expected counts what a test sent.
type expected struct {
	total  int
	byAPI  map[string]int
	byKey  map[string]int
	status map[string]map[string]int // api -> class -> n
}

var (
	testAPIs   = []string{"orders", "users", "search"}
	testKeys   = []string{"k1" + strings.Repeat("a", 62), "k2" + strings.Repeat("b", 62), "k3" + strings.Repeat("c", 62), ""}
	testStatus = []int{200, 200, 201, 204, 301, 404, 429, 500, 503}
)

// gen makes batches: batches[i] is one message of api batches[i].api.
type batch struct {
	api, id string
	evs     []usage.Event
}

func gen(k, perBatch int, at time.Time) ([]batch, expected) {
	exp := expected{byAPI: map[string]int{}, byKey: map[string]int{}, status: map[string]map[string]int{}}
	var out []batch
	for i := 0; i < k; {
		api := testAPIs[len(out)%len(testAPIs)]
		b := batch{api: api, id: fmt.Sprintf("node1-boot1-%d", len(out))}
		for j := 0; j < perBatch && i < k; j, i = j+1, i+1 {
			st := testStatus[i%len(testStatus)]
			key := testKeys[i%len(testKeys)]
			ev := usage.Event{ID: fmt.Sprintf("node1-boot1-e%d", i), Time: at.UnixNano(), Node: "node1", API: api,
				KeyHash: key, Method: "GET", Path: "/v1/x", Endpoint: "/v1/*", Status: st,
				Latency: int64(100 + i%5000), BytesIn: 10, BytesOut: 100}
			if st == 429 {
				ev.Limited = "rate"
			}
			b.evs = append(b.evs, ev)
			exp.total++
			exp.byAPI[api]++
			if key == "" {
				key = "-"
			}
			exp.byKey[key]++
			if exp.status[api] == nil {
				exp.status[api] = map[string]int{}
			}
			exp.status[api][strconv.Itoa(st/100)+"xx"]++
		}
		out = append(out, b)
	}
	return out, exp
}

func getJSON(addr, path string, v any) error {
	resp, err := get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

type usageResp struct {
	Series []struct {
		T        time.Time      `json:"t"`
		Requests int            `json:"requests"`
		Status   map[string]int `json:"status"`
	} `json:"series"`
	Totals struct {
		Requests int            `json:"requests"`
		Status   map[string]int `json:"status"`
		Limited  int            `json:"limited"`
	} `json:"totals"`
}

type topResp struct {
	Items []struct {
		Name     string `json:"name"`
		API      string `json:"api"`
		Requests int    `json:"requests"`
	} `json:"items"`
}

// checkExact verifies the query API shows exactly what exp counts.
func checkExact(addr string, exp expected) error {
	var all usageResp
	if err := getJSON(addr, "/v1/usage?from=-2h", &all); err != nil {
		return err
	}
	if all.Totals.Requests != exp.total {
		return fmt.Errorf("all APIs: %d requests, want %d", all.Totals.Requests, exp.total)
	}
	for api, n := range exp.byAPI {
		var u usageResp
		if err := getJSON(addr, "/v1/usage?from=-2h&api="+api, &u); err != nil {
			return err
		}
		if u.Totals.Requests != n {
			return fmt.Errorf("api %s: %d requests, want %d", api, u.Totals.Requests, n)
		}
		for class, want := range exp.status[api] {
			if u.Totals.Status[class] != want {
				return fmt.Errorf("api %s status %s: %d, want %d", api, class, u.Totals.Status[class], want)
			}
		}
	}
	for key, n := range exp.byKey {
		var u usageResp
		if err := getJSON(addr, "/v1/usage?from=-2h&key="+key, &u); err != nil {
			return err
		}
		if u.Totals.Requests != n {
			return fmt.Errorf("key %s: %d requests, want %d", key, u.Totals.Requests, n)
		}
	}
	var top topResp
	if err := getJSON(addr, "/v1/usage/top?by=key&from=-2h", &top); err != nil {
		return err
	}
	if len(top.Items) != len(exp.byKey) {
		return fmt.Errorf("top keys: %d items, want %d", len(top.Items), len(exp.byKey))
	}
	for _, it := range top.Items {
		if it.Requests != exp.byKey[it.Name] {
			return fmt.Errorf("top key %s: %d, want %d", it.Name, it.Requests, exp.byKey[it.Name])
		}
	}
	return nil
}

// metric reads one sample of the worker's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

var errNotYet = fmt.Errorf("not yet")
