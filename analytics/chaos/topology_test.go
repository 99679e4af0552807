//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// The suite's APIs and keys. The open API serves from the node's fallback
// limiter while Redis fails (on_store_error open); the closed API answers
// 503 (on_store_error closed). Every key has an exact limit, so every
// request asks Redis.
const (
	openAPI   = "chaos-open"
	hammerKey = "chaos-hammer-key-0123456789abcdef" // limit hammerRate/s on openAPI
	openKey   = "chaos-open-key-0123456789abcdef"   // roomy limit on openAPI
	closedKey = "chaos-closed-key-0123456789abcdef" // roomy limit on the closed API
)

// hammerRate is the limit of the hammered key, per second, and hammerBurst
// its burst: no aligned second may admit more than hammerRate+hammerBurst.
const (
	hammerRate  = 100
	hammerBurst = 10
	roomyRate   = 100000
)

// topology is the whole Sluice of the suite: NATS and Redis clusters, an
// upstream, 3 gateways, 2 syncers and 2 analytics workers.
type topology struct {
	t         *testing.T
	bin       binaries
	nats      *natsCluster
	redis     *testutil.RedisCluster // nil in the slow-link topology
	single    *testutil.Redis        // the slow-link topology's one Redis
	sentinel  *testutil.Sentinel     // the Sentinel topology's Redis
	proxy     *delayProxy            // between the last gateway and single
	upstream  *httptest.Server
	closedAPI string // its counters share the open API's primary
	gateways  []*gatewayProc
	syncers   []*syncerProc
	workers   []*workerProc
}

type gatewayProc struct {
	*proc
	addr, ops string
}

type syncerProc struct {
	*proc
	addr string
}

type workerProc struct {
	*proc
	addr string
}

// redisClusterConf is the configuration every Redis Cluster node starts from.
const redisClusterConf = "../../deployments/redis-cluster/redis.conf"

// redisMode is the Redis a topology runs.
type redisMode int

const (
	// redisCluster: 3 primaries with a replica each.
	redisCluster redisMode = iota
	// redisSlowLink: one redis-server; the last gateway reaches it through
	// a delay proxy (a cluster client learns the nodes' own addresses from
	// the cluster, so it would go around a proxy).
	redisSlowLink
	// redisSentinel: a primary, a replica and 3 sentinels.
	redisSentinel
)

// startTopology starts the suite's cluster with the Redis of mode.
func startTopology(t *testing.T, bin binaries, mode redisMode) *topology {
	t.Helper()
	tp := &topology{t: t, bin: bin}
	tp.nats = startNATSCluster(t, bin.NATS)
	switch mode {
	case redisSlowLink:
		tp.single = testutil.StartRedis(t)
		tp.proxy = startDelayProxy(t, tp.single.Addr())
	case redisSentinel:
		tp.sentinel = testutil.StartSentinels(t, 3)
	default:
		// Every node runs the deployment's redis.conf (its
		// cluster-node-timeout, 5s, included).
		conf, err := filepath.Abs(redisClusterConf)
		if err != nil {
			t.Fatal(err)
		}
		tp.redis = testutil.StartRedisClusterConf(t, 1, conf, 0)
	}
	tp.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}))
	t.Cleanup(tp.upstream.Close)
	tp.seed()
	// Analytics first: it creates the usage stream with 3 replicas (the
	// gateways may create it too, with their defaults, never update it).
	for i := range 2 {
		tp.workers = append(tp.workers, tp.startWorker("chaos-an"+strconv.Itoa(i+1)))
	}
	testutil.WaitFor(t, 30*time.Second, func() error { _, err := tp.nats.streamLeader(); return err })
	for i := range 2 {
		tp.syncers = append(tp.syncers, tp.startSyncer("chaos-sy"+strconv.Itoa(i+1)))
	}
	for i := range 3 {
		var env []string
		if tp.proxy != nil && i == 2 {
			env = []string{"SLUICE_REDIS_ADDR=" + tp.proxy.Addr()}
		}
		tp.gateways = append(tp.gateways, tp.startGateway("chaos-gw"+strconv.Itoa(i+1), env...))
	}
	return tp
}

// seed stores the APIs, policies and keys. The closed API's id is chosen
// so that its counters live on the same primary as the open API's: a fault
// of that primary reaches both.
func (tp *topology) seed() {
	t := tp.t
	t.Helper()
	var rdb goredis.UniversalClient
	switch {
	case tp.single != nil:
		rdb, tp.closedAPI = tp.single.Client(t), "chaos-closed-0"
	case tp.sentinel != nil:
		fc := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: tp.sentinel.Master, SentinelAddrs: tp.sentinel.Addrs()})
		t.Cleanup(func() { _ = fc.Close() })
		rdb, tp.closedAPI = fc, "chaos-closed-0"
	default:
		rdb = tp.redis.Client(t)
	}
	for i := 0; tp.closedAPI == ""; i++ {
		target := tp.redis.NodeFor(t, (store.Layout{}).CounterPrefix(openAPI))
		if i == 1000 {
			t.Fatal("no closed API id found whose counters share the open API's primary")
		}
		id := "chaos-closed-" + strconv.Itoa(i)
		if tp.redis.NodeFor(t, (store.Layout{}).CounterPrefix(id)) == target {
			tp.closedAPI = id
		}
	}
	st := store.New(rdb, 0)
	ctx := context.Background()
	up := model.Upstream{Targets: []string{tp.upstream.URL}}
	apis := []*model.API{
		{ID: openAPI, ListenPath: "/open/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}, OnStoreError: "open"},
		{ID: tp.closedAPI, ListenPath: "/closed/", StripListenPath: true, Upstream: up, Auth: model.Auth{Mode: model.AuthAPIKey}, OnStoreError: "closed"},
	}
	limit := func(rate int64, burst int64) *model.Limit {
		return &model.Limit{Rate: rate, Burst: burst, Per: model.Duration(time.Second), Mode: model.LimitExact}
	}
	policies := []*model.Policy{
		{ID: "chaos-hammer", Access: []model.AccessRight{{API: openAPI}}, RateLimit: limit(hammerRate, hammerBurst)},
		{ID: "chaos-open", Access: []model.AccessRight{{API: openAPI}}, RateLimit: limit(roomyRate, roomyRate)},
		{ID: "chaos-closed", Access: []model.AccessRight{{API: tp.closedAPI}}, RateLimit: limit(roomyRate, roomyRate)},
		{ID: "chaos-churn", Access: []model.AccessRight{{API: openAPI}}},
	}
	now := time.Now().UTC()
	keys := []*model.Key{
		{ID: "chaos-hammer", Hash: model.HashKey([]byte(hammerKey)), Policies: []string{"chaos-hammer"}, CreatedAt: now},
		{ID: "chaos-open", Hash: model.HashKey([]byte(openKey)), Policies: []string{"chaos-open"}, CreatedAt: now},
		{ID: "chaos-closed", Hash: model.HashKey([]byte(closedKey)), Policies: []string{"chaos-closed"}, CreatedAt: now},
	}
	for _, a := range apis {
		if errs := a.Validate(); len(errs) > 0 {
			t.Fatalf("api %s: %v", a.ID, errs.Err())
		}
		if _, err := storetest.PutAPI(ctx, st, a); err != nil {
			t.Fatalf("seed api %s: %v", a.ID, err)
		}
	}
	for _, p := range policies {
		if errs := p.Validate(); len(errs) > 0 {
			t.Fatalf("policy %s: %v", p.ID, errs.Err())
		}
		if _, err := storetest.PutPolicy(ctx, st, p); err != nil {
			t.Fatalf("seed policy %s: %v", p.ID, err)
		}
	}
	for _, k := range keys {
		if _, err := storetest.PutKey(ctx, st, k); err != nil {
			t.Fatalf("seed key %s: %v", k.ID, err)
		}
	}
}

// commonEnv configures every service for the topology's Redis and NATS.
func (tp *topology) commonEnv() []string {
	var redis []string
	switch {
	case tp.redis != nil:
		redis = []string{"SLUICE_REDIS_CLUSTER_ADDRS=" + strings.Join(tp.redis.Addrs(), ",")}
	case tp.sentinel != nil:
		redis = []string{"SLUICE_REDIS_SENTINEL_MASTER=" + tp.sentinel.Master,
			"SLUICE_REDIS_SENTINEL_ADDRS=" + strings.Join(tp.sentinel.Addrs(), ",")}
	default:
		redis = []string{"SLUICE_REDIS_ADDR=" + tp.single.Addr()}
	}
	return append(redis,
		"SLUICE_NATS_URL="+tp.nats.URL(),
		"SLUICE_LOG_FORMAT=json",
		"SLUICE_LOG_LEVEL=info",
	)
}

// startGateway starts a gateway node. A Redis call has 500ms before the
// API's on_store_error decides; usage batches flush every 20ms and a batch
// not acknowledged in 1s is sent again.
func (tp *topology) startGateway(name string, extra ...string) *gatewayProc {
	tp.t.Helper()
	g := &gatewayProc{addr: freeAddr(tp.t), ops: freeAddr(tp.t)}
	g.proc = startProc(tp.t, name, tp.bin.Gateway, append(append(tp.commonEnv(), extra...),
		"SLUICE_NODE_ID="+name,
		"SLUICE_LISTEN="+g.addr,
		"SLUICE_OPS_LISTEN="+g.ops,
		"SLUICE_USAGE_FLUSH_INTERVAL=20ms",
		"SLUICE_USAGE_BATCH_SIZE=100",
		"SLUICE_USAGE_ACK_TIMEOUT=1s",
		"SLUICE_AUTH_LOOKUP_TIMEOUT=500ms",
		"SLUICE_LIMITS_TIMEOUT=500ms",
		"SLUICE_SYNC_CHECK_INTERVAL=1s",
		"SLUICE_SHUTDOWN_TIMEOUT=5s",
	))
	if err := g.WaitReady(context.Background(), "http://"+g.ops+"/ready", 30*time.Second); err != nil {
		tp.t.Fatal(err)
	}
	return g
}

// startSyncer starts a syncer with no admin token (loopback only).
func (tp *topology) startSyncer(name string) *syncerProc {
	tp.t.Helper()
	s := &syncerProc{addr: freeAddr(tp.t)}
	s.proc = startProc(tp.t, name, tp.bin.Syncer, append(tp.commonEnv(), "SLUICE_LISTEN="+s.addr), "--insecure-dev")
	if err := s.WaitReady(context.Background(), "http://"+s.addr+"/ready", 30*time.Second); err != nil {
		tp.t.Fatal(err)
	}
	return s
}

// startWorker starts an analytics worker; the usage stream it creates has
// three replicas. ack_wait is short so a killed worker's batches come back
// within seconds; the grace window keeps every minute open for them.
func (tp *topology) startWorker(name string) *workerProc {
	tp.t.Helper()
	w := &workerProc{addr: freeAddr(tp.t)}
	w.proc = startProc(tp.t, name, tp.bin.Analytics, append(tp.commonEnv(),
		"SLUICE_LISTEN="+w.addr,
		"SLUICE_AUTH_TOKEN="+usageToken,
		"SLUICE_USAGE_STREAM_REPLICAS=3",
		"SLUICE_NATS_ACK_WAIT=2s",
		"SLUICE_NATS_FETCH_BATCH=16",
		"SLUICE_NATS_FETCH_WAIT=100ms",
		"SLUICE_AGGREGATION_GRACE=2m",
		"SLUICE_AGGREGATION_CLOSE_INTERVAL=500ms",
	))
	if err := w.WaitReady(context.Background(), "http://"+w.addr+"/ready", 30*time.Second); err != nil {
		tp.t.Fatal(err)
	}
	return w
}

func freeAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
}

// liveWorker is a worker that answers, for queries.
func (tp *topology) liveWorker() (*workerProc, error) {
	for _, w := range tp.workers {
		if !w.Exited() {
			return w, nil
		}
	}
	return nil, fmt.Errorf("no analytics worker is running")
}
