package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// cluster is one Redis shared by any number of gateway nodes.
type cluster struct {
	t     testing.TB
	redis *testutil.Redis
	store *store.Store
	// storeTimeout bounds the nodes' Redis calls: short by default so the
	// store-failure tests see timeouts quickly.
	storeTimeout time.Duration
	// jwt are the nodes' JWT provider options (FetchTimeout 2s when unset).
	jwt jwtauth.Options
	// maxResponse bounds upstream response bodies (0: unbounded).
	maxResponse int
	// maxBody bounds request bodies (0: 64 KiB).
	maxBody int
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	r := testutil.StartRedis(t)
	return &cluster{t: t, redis: r, store: store.New(r.Client(t), 0), storeTimeout: 200 * time.Millisecond}
}

// newExactCluster is a cluster for exactness tests: Redis calls get a long
// timeout, so a machine busy with other tests never pushes a decision to the
// fallback limiter; the APIs of such tests fail closed, so if one ever did,
// the test would see a 503 rather than silently count a fallback decision.
func newExactCluster(t testing.TB) *cluster {
	c := newCluster(t)
	c.storeTimeout = 5 * time.Second
	return c
}

func (c *cluster) put(objs ...any) {
	c.t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *model.API:
			_, err = storetest.PutAPI(ctx, c.store, o)
		case *model.Policy:
			_, err = storetest.PutPolicy(ctx, c.store, o)
		case *model.Key:
			_, err = storetest.PutKey(ctx, c.store, o)
		case *model.Org:
			_, err = storetest.PutOrg(ctx, c.store, o)
		}
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// recorder keeps usage events (the usage publisher is tested on its own).
type recorder struct {
	mu     sync.Mutex
	events []usage.Event
}

func (r *recorder) Emit(e *usage.Event) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *e // Path and RequestID view the request's buffers: copy them
	c.Path, c.RequestID = strings.Clone(e.Path), strings.Clone(e.RequestID)
	r.events = append(r.events, c)
	return true
}

func (r *recorder) all() []usage.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]usage.Event(nil), r.events...)
}

type node struct {
	srv    *Server
	state  *state.State
	events *recorder
	reg    *prometheus.Registry
	url    string
}

func (c *cluster) node(mut ...func(*Options)) *node {
	t := c.t
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr: c.redis.Addr(), DialTimeout: c.storeTimeout,
		ReadTimeout: c.storeTimeout, WriteTimeout: c.storeTimeout, MaxRetries: -1,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb, 0)
	reg := prometheus.NewRegistry()
	log := zerolog.Nop()
	jo := c.jwt
	if jo.FetchTimeout == 0 {
		jo.FetchTimeout = 2 * time.Second
	}
	jp, err := jwtauth.New(jo, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := state.New(st, state.Options{
		JWT:     jp,
		MaxBody: c.requestBound(),
		Proxy:   proxy.Options{ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxConnsPerHost: 64, MaxResponseBodySize: c.maxResponse},
		Auth:    auth.Options{CacheSize: 1000, TTL: time.Minute, NegativeCacheSize: 1000, NegativeTTL: time.Second, LookupTimeout: c.storeTimeout},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	lim, err := limit.New(rdb, limit.Options{Timeout: c.storeTimeout, StoreRetry: 50 * time.Millisecond}, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := lim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Listen: "127.0.0.1:0", Node: "n1", MaxHeaderBytes: 4096, MaxBodyBytes: c.requestBound(), MinKeyLength: 16,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
	}
	for _, m := range mut {
		m(&opts)
	}
	rec := &recorder{}
	srv, err := New(opts, s, lim, rec, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = lim.Shutdown(ctx)
		_ = jp.Shutdown(ctx)
	})
	return &node{srv: srv, state: s, events: rec, reg: reg, url: "http://" + srv.Addr()}
}

func (c *cluster) requestBound() int {
	if c.maxBody > 0 {
		return c.maxBody
	}
	return 1 << 16
}

// echo is an upstream answering with what it received.
type echoed struct {
	Path    string            `json:"path"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
}

func echoUpstream(t testing.TB) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := echoed{Path: r.URL.RequestURI(), Host: r.Host, Headers: map[string]string{}}
		for k := range r.Header {
			e.Headers[k] = r.Header.Get(k)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(e)
	}))
	t.Cleanup(s.Close)
	return s
}

type response struct {
	status int
	header http.Header
	body   string
	echo   echoed
	code   string
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(t testing.TB, method, url string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &out.echo)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		out.code = e.Error.Code
	}
	return out
}

func keyFor(secret string, mut ...func(*model.Key)) *model.Key {
	k := &model.Key{ID: "k-" + secret[:6], Hash: model.HashKey([]byte(secret)), CreatedAt: time.Now()}
	for _, m := range mut {
		m(k)
	}
	return k
}

func waitStatus(t *testing.T, want int, f func() int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got := f(); got != want {
			return errors.New("status " + http.StatusText(got))
		}
		return nil
	})
}

// hammerRequests is how many requests hammer sends: 12 workers × 15.
const hammerRequests = 12 * 15

// hammer sends hammerRequests concurrently, request i of worker w through
// send, and counts the 200s and 429s; any other status fails the test.
func hammer(t *testing.T, send func(w, i int) response) (ok, limited int64) {
	t.Helper()
	var okN, limitedN atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				switch r := send(w, i); r.status {
				case 200:
					okN.Add(1)
				case 429:
					limitedN.Add(1)
				default:
					t.Errorf("status %d: %s", r.status, r.body)
				}
			}
		}(w)
	}
	wg.Wait()
	return okN.Load(), limitedN.Load()
}
