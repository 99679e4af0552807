package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/settings"
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

func (e *env) config() settings.Config {
	c := settings.Default()
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

func (e *env) start(t *testing.T, cfg settings.Config, opts ...Option) *Service {
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
	// units summed as the gateways reported them: in all, by API, by key
	// hash and by API and endpoint.
	units      int64
	unitsAPI   map[string]int64
	unitsKey   map[string]int64
	unitsEndpt map[string]int64 // "api endpoint"
}

var (
	testAPIs   = []string{"orders", "users", "search"}
	testKeys   = []string{"k1" + strings.Repeat("a", 62), "k2" + strings.Repeat("b", 62), "k3" + strings.Repeat("c", 62), ""}
	testStatus = []int{200, 200, 201, 204, 301, 404, 429, 500, 503}
	testEndpts = []string{"/v1/chat", "/v1/embed", ""}
	// testNames are the key id and alias the events carry per key hash.
	testNames = map[string][2]string{testKeys[0]: {"key-1", "acme"}, testKeys[1]: {"key-2", ""}, testKeys[2]: {"jwt", ""}}
)

// unitsOf is the cost event i reports: refused requests and one in five
// others cost nothing (no units field), the rest 1 to 2,000.
func unitsOf(i, status int) int64 {
	if status == 429 || i%5 == 0 {
		return 0
	}
	return int64(1 + (i*7919)%2000)
}

// gen makes batches: batches[i] is one message of api batches[i].api.
type batch struct {
	api, id string
	evs     []usage.Event
}

func gen(k, perBatch int, at time.Time) ([]batch, expected) {
	exp := expected{byAPI: map[string]int{}, byKey: map[string]int{}, status: map[string]map[string]int{},
		unitsAPI: map[string]int64{}, unitsKey: map[string]int64{}, unitsEndpt: map[string]int64{}}
	var out []batch
	for i := 0; i < k; {
		api := testAPIs[len(out)%len(testAPIs)]
		b := batch{api: api, id: fmt.Sprintf("node1-boot1-%d", len(out))}
		for j := 0; j < perBatch && i < k; j, i = j+1, i+1 {
			st := testStatus[i%len(testStatus)]
			key := testKeys[i%len(testKeys)]
			ev := usage.Event{ID: fmt.Sprintf("node1-boot1-e%d", i), Time: at.UnixNano(), Node: "node1", API: api,
				KeyHash: key, Method: "GET", Path: "/v1/x", Endpoint: testEndpts[i%len(testEndpts)], Status: st,
				Latency: int64(100 + i%5000), BytesIn: 10, BytesOut: 100, Units: unitsOf(i, st)}
			ev.KeyID, ev.KeyAlias = testNames[key][0], testNames[key][1]
			if st == 429 {
				ev.Limited = "rate"
			}
			ep := ev.Endpoint
			if ep == "" {
				ep = "-"
			}
			exp.units += ev.Units
			exp.unitsAPI[api] += ev.Units
			exp.unitsEndpt[api+" "+ep] += ev.Units
			b.evs = append(b.evs, ev)
			exp.total++
			exp.byAPI[api]++
			if key == "" {
				key = "-"
			}
			exp.byKey[key]++
			exp.unitsKey[key] += ev.Units
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
		Units    int64          `json:"units"`
	} `json:"totals"`
	KeyID    string `json:"key_id"`
	KeyAlias string `json:"key_alias"`
}

type topResp struct {
	Items []struct {
		Name     string `json:"name"`
		API      string `json:"api"`
		KeyID    string `json:"key_id"`
		KeyAlias string `json:"key_alias"`
		Requests int    `json:"requests"`
		Units    int64  `json:"units"`
	} `json:"items"`
}

// checkExact verifies the query API shows exactly what exp counts.
func checkExact(addr string, exp expected) error {
	var all usageResp
	if err := getJSON(addr, "/v1/usage?from=-2h", &all); err != nil {
		return err
	}
	if all.Totals.Requests != exp.total || all.Totals.Units != exp.units {
		return fmt.Errorf("all APIs: %d requests %d units, want %d %d", all.Totals.Requests, all.Totals.Units, exp.total, exp.units)
	}
	for api, n := range exp.byAPI {
		var u usageResp
		if err := getJSON(addr, "/v1/usage?from=-2h&api="+api, &u); err != nil {
			return err
		}
		if u.Totals.Requests != n || u.Totals.Units != exp.unitsAPI[api] {
			return fmt.Errorf("api %s: %d requests %d units, want %d %d", api, u.Totals.Requests, u.Totals.Units, n, exp.unitsAPI[api])
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
		if u.Totals.Requests != n || u.Totals.Units != exp.unitsKey[key] {
			return fmt.Errorf("key %s: %d requests %d units, want %d %d", key, u.Totals.Requests, u.Totals.Units, n, exp.unitsKey[key])
		}
		if u.KeyID != testNames[key][0] || u.KeyAlias != testNames[key][1] {
			return fmt.Errorf("key %s named %q %q, want %q", key, u.KeyID, u.KeyAlias, testNames[key])
		}
	}
	if err := checkEndpoints(addr, exp); err != nil {
		return err
	}
	var top topResp
	if err := getJSON(addr, "/v1/usage/top?by=key&from=-2h", &top); err != nil {
		return err
	}
	if len(top.Items) != len(exp.byKey) {
		return fmt.Errorf("top keys: %d items, want %d", len(top.Items), len(exp.byKey))
	}
	for _, it := range top.Items {
		if it.Requests != exp.byKey[it.Name] || it.Units != exp.unitsKey[it.Name] {
			return fmt.Errorf("top key %s: %d requests %d units, want %d %d", it.Name, it.Requests, it.Units, exp.byKey[it.Name], exp.unitsKey[it.Name])
		}
		if it.KeyID != testNames[it.Name][0] || it.KeyAlias != testNames[it.Name][1] {
			return fmt.Errorf("top key %s named %q %q, want %q", it.Name, it.KeyID, it.KeyAlias, testNames[it.Name])
		}
	}
	return nil
}

// checkEndpoints verifies the units of every endpoint, from the top list
// and from the endpoint's series.
func checkEndpoints(addr string, exp expected) error {
	var top topResp
	if err := getJSON(addr, "/v1/usage/top?by=endpoint&sort=units&limit=1000&from=-2h", &top); err != nil {
		return err
	}
	if len(top.Items) != len(exp.unitsEndpt) {
		return fmt.Errorf("top endpoints: %d items, want %d", len(top.Items), len(exp.unitsEndpt))
	}
	for i, it := range top.Items {
		if want := exp.unitsEndpt[it.API+" "+it.Name]; it.Units != want {
			return fmt.Errorf("endpoint %s %s: %d units, want %d", it.API, it.Name, it.Units, want)
		}
		if i > 0 && it.Units > top.Items[i-1].Units {
			return fmt.Errorf("top endpoints by units not in order: %d after %d", it.Units, top.Items[i-1].Units)
		}
		var u usageResp
		q := url.Values{"from": {"-2h"}, "api": {it.API}, "endpoint": {it.Name}}
		if err := getJSON(addr, "/v1/usage?"+q.Encode(), &u); err != nil {
			return err
		}
		if u.Totals.Units != it.Units || u.Totals.Requests != it.Requests {
			return fmt.Errorf("endpoint %s %s series: %d requests %d units, top says %d %d",
				it.API, it.Name, u.Totals.Requests, u.Totals.Units, it.Requests, it.Units)
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
