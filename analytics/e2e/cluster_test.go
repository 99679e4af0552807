package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// The cluster's APIs and keys; they live only in the test's own Redis.
const (
	keyedAPI   = "e2e-keyed" // API key auth, /keyed/
	openAPI    = "e2e-open"  // keyless, /open/
	limitedKey = "e2e-limited-key-0123456789abcdef"
	roomyKey   = "e2e-roomy-key-0123456789abcdef"
	unknownKey = "e2e-unknown-key-0123456789abcdef" // never stored: 401
)

// limitedRate is the limited key's rate per second (burst limitedBurst):
// the load sends it more, so the gateways answer some of its requests 429.
const (
	limitedRate  = 50
	limitedBurst = 10
)

// cluster is one test's Sluice: Redis, NATS, an upstream, gateways and
// analytics workers, each a real process but the upstream.
type cluster struct {
	t        *testing.T
	bin      binaries
	redis    *testutil.Redis
	nats     *testutil.NATS
	upstream *httptest.Server
	gateways []*gatewayProc
	workers  []*workerProc
	js       jetstream.JetStream // made on first use, on the test goroutine
}

type gatewayProc struct {
	*proc
	addr, ops string // traffic and operations host:port
}

type workerProc struct {
	*proc
	addr string // query API host:port
}

// newCluster starts Redis, NATS and the upstream and seeds the APIs,
// policies and keys; the Sluice processes are started by the caller.
func newCluster(t *testing.T, bin binaries) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: bin, redis: testutil.StartRedis(t), nats: testutil.StartNATS(t)}
	c.upstream = httptest.NewServer(http.HandlerFunc(upstreamHandler))
	t.Cleanup(c.upstream.Close)
	c.seed()
	return c
}

// upstreamHandler answers by the last path segment: /missing 404, /fail
// 500, /moved 302, anything else 200.
func upstreamHandler(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/missing"):
		http.Error(w, "missing", http.StatusNotFound)
	case strings.HasSuffix(r.URL.Path, "/fail"):
		http.Error(w, "fail", http.StatusInternalServerError)
	case strings.HasSuffix(r.URL.Path, "/moved"):
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusFound)
	default:
		_, _ = io.WriteString(w, "ok\n")
	}
}

func (c *cluster) seed() {
	c.t.Helper()
	ctx := context.Background()
	st := store.New(c.redis.Client(c.t), 0)
	up := model.Upstream{Targets: []string{c.upstream.URL}}
	apis := []*model.API{
		{ID: keyedAPI, ListenPath: "/keyed/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}},
		{ID: openAPI, ListenPath: "/open/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthKeyless}},
	}
	policies := []*model.Policy{
		{ID: "e2e-limited", Access: []model.AccessRight{{API: keyedAPI}},
			RateLimit: &model.Limit{Rate: limitedRate, Burst: limitedBurst, Per: model.Duration(time.Second), Mode: model.LimitExact}},
		{ID: "e2e-roomy", Access: []model.AccessRight{{API: keyedAPI}}},
	}
	now := time.Now().UTC()
	keys := []*model.Key{
		{ID: "e2e-limited", Hash: model.HashKey([]byte(limitedKey)), Policies: []string{"e2e-limited"}, CreatedAt: now},
		{ID: "e2e-roomy", Hash: model.HashKey([]byte(roomyKey)), Policies: []string{"e2e-roomy"}, CreatedAt: now},
	}
	for _, a := range apis {
		if errs := a.Validate(); len(errs) > 0 {
			c.t.Fatalf("api %s: %v", a.ID, errs.Err())
		}
		if _, err := storetest.PutAPI(ctx, st, a); err != nil {
			c.t.Fatalf("seed api %s: %v", a.ID, err)
		}
	}
	for _, p := range policies {
		if errs := p.Validate(); len(errs) > 0 {
			c.t.Fatalf("policy %s: %v", p.ID, errs.Err())
		}
		if _, err := storetest.PutPolicy(ctx, st, p); err != nil {
			c.t.Fatalf("seed policy %s: %v", p.ID, err)
		}
	}
	for _, k := range keys {
		if _, err := storetest.PutKey(ctx, st, k); err != nil {
			c.t.Fatalf("seed key %s: %v", k.ID, err)
		}
	}
}

// startGateway starts a gateway node that flushes usage batches every 20ms
// and retries an unacknowledged batch after 1s.
func (c *cluster) startGateway(name string) *gatewayProc {
	c.t.Helper()
	g := &gatewayProc{addr: freeAddr(c.t), ops: freeAddr(c.t)}
	g.proc = startProc(c.t, name, c.bin.Gateway, []string{
		"SLUICE_NODE_ID=" + name,
		"SLUICE_LISTEN=" + g.addr,
		"SLUICE_OPS_LISTEN=" + g.ops,
		"SLUICE_REDIS_ADDR=" + c.redis.Addr(),
		"SLUICE_NATS_URL=" + c.nats.URL(),
		"SLUICE_USAGE_FLUSH_INTERVAL=20ms",
		"SLUICE_USAGE_BATCH_SIZE=50",
		"SLUICE_USAGE_ACK_TIMEOUT=1s",
		// A slow machine must not turn a key lookup into a 503 with no
		// session (the test attributes a keyed request to its key).
		"SLUICE_AUTH_LOOKUP_TIMEOUT=2s",
		"SLUICE_LIMITS_TIMEOUT=2s",
		"SLUICE_SHUTDOWN_TIMEOUT=5s",
		"SLUICE_LOG_FORMAT=json",
		"SLUICE_LOG_LEVEL=info",
	})
	if err := g.WaitReady(context.Background(), "http://"+g.ops+"/ready", 15*time.Second); err != nil {
		c.t.Fatal(err)
	}
	c.gateways = append(c.gateways, g)
	return g
}

// startWorker starts an analytics worker. ack_wait is short so the batches
// a killed worker held come back within seconds; the grace window is long
// enough that such a batch (or one a gateway held through a NATS restart)
// still finds its minute open, so every event is in a minute and the
// per-key series are exact.
func (c *cluster) startWorker(name string) *workerProc {
	c.t.Helper()
	w := &workerProc{addr: freeAddr(c.t)}
	w.proc = startProc(c.t, name, c.bin.Analytics, []string{
		"SLUICE_LISTEN=" + w.addr,
		"SLUICE_AUTH_TOKEN=" + usageToken,
		"SLUICE_REDIS_ADDR=" + c.redis.Addr(),
		"SLUICE_NATS_URL=" + c.nats.URL(),
		"SLUICE_NATS_ACK_WAIT=2s",
		"SLUICE_NATS_FETCH_BATCH=8",
		"SLUICE_NATS_FETCH_WAIT=100ms",
		"SLUICE_AGGREGATION_GRACE=20s",
		"SLUICE_AGGREGATION_CLOSE_INTERVAL=250ms",
		"SLUICE_LOG_FORMAT=json",
		"SLUICE_LOG_LEVEL=info",
	})
	if err := w.WaitReady(context.Background(), "http://"+w.addr+"/ready", 15*time.Second); err != nil {
		c.t.Fatal(err)
	}
	c.workers = append(c.workers, w)
	return w
}

func freeAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

// point is a usage figure as the query API returns it.
type point struct {
	Requests int64 `json:"requests"`
	Status   struct {
		S2xx int64 `json:"2xx"`
		S3xx int64 `json:"3xx"`
		S4xx int64 `json:"4xx"`
		S5xx int64 `json:"5xx"`
	} `json:"status"`
	Limited  int64 `json:"limited"`
	BytesOut int64 `json:"bytes_out"`
}

func (p point) String() string {
	return fmt.Sprintf("requests=%d 2xx=%d 3xx=%d 4xx=%d 5xx=%d limited=%d bytes_out=%d",
		p.Requests, p.Status.S2xx, p.Status.S3xx, p.Status.S4xx, p.Status.S5xx, p.Limited, p.BytesOut)
}

// totals is GET /v1/usage/totals?api=.
func (w *workerProc) totals(api string) (point, int64, error) {
	var body struct {
		point
		Late int64 `json:"late"`
	}
	err := getJSON("http://"+w.addr+"/v1/usage/totals?api="+url.QueryEscape(api), &body)
	return body.point, body.Late, err
}

// usage is the totals of GET /v1/usage over the last hour, of api or of
// one key on api.
func (w *workerProc) usage(api, keyHash string) (point, error) {
	q := url.Values{"api": {api}, "from": {"-1h"}, "to": {"now"}, "step": {"1m"}}
	if keyHash != "" {
		q.Set("key", keyHash)
	}
	var body struct {
		Totals point `json:"totals"`
	}
	err := getJSON("http://"+w.addr+"/v1/usage?"+q.Encode(), &body)
	return body.Totals, err
}

// usageToken is the workers' auth.token.
const usageToken = "e2e-usage-token-0123456789"

func getJSON(u string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+usageToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, data)
	}
	return json.Unmarshal(data, v)
}

// metric sums the samples of the Prometheus metric name at addr/metrics.
func metric(addr, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum, found, err := testutil.SumMetric(data, name)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("metric %s not served by %s", name, addr)
	}
	return sum, nil
}
