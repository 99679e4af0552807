// Package e2e tests the usage pipeline end to end, as a user runs it:
// sluice-gateway and sluice-analytics binaries built from this tree, a real
// redis-server and a real NATS JetStream server, traffic over HTTP, and the
// figures read back from the query API.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// totalRequests is K, the requests each scenario sends; senders the
// goroutines that send them.
const (
	totalRequests = 2000
	senders       = 4
)

// TestUsagePipelineEndToEnd sends K requests through two gateway nodes to
// two analytics workers and checks that the usage the query API reports
// equals, exactly, what the test counted from the responses it received:
// by API, by key and by status class. The chaos scenarios prove the
// invariant "no usage event is lost or double counted across a worker
// crash or a NATS restart while the gateway's buffer holds": one kills a
// worker with SIGKILL after about half the requests, restarts NATS while
// requests keep flowing (the gateways buffer the events) and brings the
// worker back; the other freezes a worker until JetStream has handed the
// batches it held to the other worker, then lets it go on with them, so
// the same batches reach Redis twice.
func TestUsagePipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sluice binaries")
	}
	bin := buildBinaries(t, t.TempDir())
	tests := []struct {
		name  string
		rate  int // requests per second, all senders together
		chaos func(*cluster, *load)
		// redelivered: the scenario must make a worker meet a batch
		// already recorded (sluice_analytics_duplicates_total > 0).
		redelivered bool
	}{
		{name: "two_gateways_two_workers", rate: 1000},
		{name: "worker_killed_and_nats_restarted", rate: 400, chaos: (*cluster).crashAndRestart},
		{name: "worker_frozen_past_ack_wait", rate: 300, chaos: (*cluster).freeze, redelivered: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, bin)
			c.startGateway("e2e-gw1")
			c.startGateway("e2e-gw2")
			c.startWorker("e2e-an1")
			c.startWorker("e2e-an2")

			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel) // runs before the processes are stopped
			l := newLoad(c, tc.rate)
			go l.run(ctx)
			if tc.chaos != nil {
				tc.chaos(c, l)
			}
			select {
			case <-l.done:
			case <-time.After(time.Minute):
				t.Fatalf("the load did not finish within a minute (%d of %d requests answered)", l.answered.Load(), totalRequests)
			}
			want := l.result(t)
			c.checkUsage(want)
			if tc.redelivered {
				c.checkDuplicatesSkipped()
			}
		})
	}
}

// crashAndRestart runs on the test goroutine while the load runs: at about
// half the requests it kills worker 2 with SIGKILL; then it stops NATS for
// a short pause during which the gateways keep serving and buffering,
// starts it again, and restarts the killed worker.
func (c *cluster) crashAndRestart(l *load) {
	c.t.Helper()
	victim := c.workers[1]
	l.waitAnswered(c.t, totalRequests/2)
	victim.Kill()
	c.t.Logf("killed %s (SIGKILL) after %d requests", victim.Name, l.answered.Load())

	l.waitAnswered(c.t, totalRequests*6/10)
	c.nats.Stop()
	c.t.Logf("stopped NATS after %d requests", l.answered.Load())
	// At the scenario's rate this is about 0.75s of traffic into the
	// gateways' buffers.
	l.waitAnswered(c.t, totalRequests*3/4)
	c.nats.Start()
	c.t.Logf("started NATS again after %d requests", l.answered.Load())

	l.waitAnswered(c.t, totalRequests*17/20)
	if err := victim.Restart(); err != nil {
		c.t.Fatal(err)
	}
	if err := victim.WaitReady(context.Background(), "http://"+victim.addr+"/ready", 15*time.Second); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("restarted %s after %d requests", victim.Name, l.answered.Load())
}

// freeze stops a worker with SIGSTOP while batches keep coming, and
// resumes it once JetStream has redelivered a batch it held (its ack_wait
// passed): the resumed worker goes on with batches the other worker may
// already have counted, and acknowledges them late. A worker frozen
// between two fetches holds nothing, so the workers are frozen in turn
// until two freezes held something or the load ends.
func (c *cluster) freeze(l *load) {
	c.t.Helper()
	l.waitAnswered(c.t, totalRequests/5)
	held := 0
	for round := 0; round < 4 && held < 2 && !l.finished(); round++ {
		if round > 0 { // let the resumed worker catch up first
			l.waitAnswered(c.t, min(l.answered.Load()+100, totalRequests))
		}
		if c.freezeOnce(l, c.workers[round%2]) {
			held++
		}
	}
	c.t.Logf("%d freezes left batches for JetStream to redeliver", held)
	if held == 0 {
		c.t.Fatal("no frozen worker held a batch past ack_wait: JetStream redelivered nothing, so the scenario proves nothing")
	}
}

// checkDuplicatesSkipped reports how many events of batches already
// recorded the workers skipped. Redelivery itself is asserted by the
// freezes (a frozen worker held a batch past ack_wait); whether that batch
// reaches the aggregation twice depends on whether the worker was frozen
// before or after recording it, so the count is reported, not required.
// The totals (checked before) are exact either way.
func (c *cluster) checkDuplicatesSkipped() {
	c.t.Helper()
	var dup float64
	for _, w := range c.workers {
		n, err := metric(w.addr, "sluice_analytics_duplicates_total")
		if err != nil {
			c.t.Fatal(err)
		}
		dup += n
	}
	c.t.Logf("%v duplicate events skipped by the workers", dup)
}

// freezeOnce freezes w until JetStream redelivers a batch, or 3s (ack_wait
// is 2s) if it held none, and reports whether it held one.
func (c *cluster) freezeOnce(l *load, w *workerProc) bool {
	c.t.Helper()
	// Every delivery takes a consumer sequence number: more of them than
	// stream messages delivered counts the redeliveries.
	redelivered := func() int64 {
		info, err := c.consumerInfo()
		if err != nil {
			c.t.Fatal(err)
		}
		return int64(info.Delivered.Consumer) - int64(info.Delivered.Stream)
	}
	before := redelivered()
	w.Signal(syscall.SIGSTOP)
	c.t.Logf("froze %s (SIGSTOP) after %d requests", w.Name, l.answered.Load())
	held := false
	for deadline := time.Now().Add(3 * time.Second); !held && time.Now().Before(deadline); {
		if held = redelivered() > before; !held {
			time.Sleep(10 * time.Millisecond)
		}
	}
	w.Signal(syscall.SIGCONT)
	c.t.Logf("resumed %s after %d requests (it held batches JetStream redelivered: %v)", w.Name, l.answered.Load(), held)
	return held
}

// tally is what the test counted from the responses it received, in the
// query API's terms.
type tally map[string]*point // by API id, or API id + "/" + key hash

func (m tally) add(id string, status, bytesOut int) {
	p := m[id]
	if p == nil {
		p = new(point)
		m[id] = p
	}
	p.Requests++
	switch status / 100 {
	case 2:
		p.Status.S2xx++
	case 3:
		p.Status.S3xx++
	case 4:
		p.Status.S4xx++
	case 5:
		p.Status.S5xx++
	}
	if status == http.StatusTooManyRequests {
		p.Limited++
	}
	p.BytesOut += int64(bytesOut)
}

// shot is one request of the mix.
type shot struct {
	api, path, key string
}

// mix is the request i sends, by i mod 20: the limited key sends more than
// its rate (some 429), the roomy key's requests reach the upstream's 200,
// 404 and 500, an unknown key gets 401, and the keyless API sees 200, 404,
// 302 and 500.
func mix(i int) shot {
	switch i % 20 {
	case 0, 1, 2, 3, 4, 5:
		return shot{keyedAPI, "/keyed/ok", limitedKey}
	case 6, 7, 8, 9:
		return shot{keyedAPI, "/keyed/ok", roomyKey}
	case 10:
		return shot{keyedAPI, "/keyed/missing", roomyKey}
	case 11:
		return shot{keyedAPI, "/keyed/fail", roomyKey}
	case 12:
		return shot{keyedAPI, "/keyed/ok", unknownKey}
	case 13, 14, 15, 16:
		return shot{openAPI, "/open/ok", ""}
	case 17:
		return shot{openAPI, "/open/missing", ""}
	case 18:
		return shot{openAPI, "/open/moved", ""}
	default:
		return shot{openAPI, "/open/fail", ""}
	}
}

// load sends totalRequests requests from a few goroutines at a fixed rate,
// alternating between the gateways, and counts the answers.
type load struct {
	c        *cluster
	interval time.Duration // between two requests of one sender
	client   *http.Client
	next     atomic.Int64
	answered atomic.Int64
	done     chan struct{}

	mu     sync.Mutex
	counts tally
	errs   []error
}

func newLoad(c *cluster, rate int) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: senders, DisableCompression: true}
	c.t.Cleanup(tr.CloseIdleConnections)
	return &load{
		c:        c,
		interval: time.Duration(senders) * time.Second / time.Duration(rate),
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		done:   make(chan struct{}),
		counts: tally{},
	}
}

func (l *load) run(ctx context.Context) {
	defer close(l.done)
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(l.interval)
			defer tick.Stop()
			for {
				i := int(l.next.Add(1) - 1)
				if i >= totalRequests {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				l.send(ctx, i)
			}
		}()
	}
	wg.Wait()
}

// send sends request i through gateway (i/3) mod 2, so every slot of the
// mix reaches both gateways.
func (l *load) send(ctx context.Context, i int) {
	s := mix(i)
	gw := l.c.gateways[(i/3)%len(l.c.gateways)]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gw.addr+s.path, nil)
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	status, n, err := l.do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("request %d %s via %s: %w", i, s.path, gw.Name, err))
		return
	}
	l.counts.add(s.api, status, n)
	if s.api == keyedAPI && status != http.StatusUnauthorized {
		l.counts.add(s.api+"/"+model.HashKey([]byte(s.key)), status, n)
	}
	l.answered.Add(1)
}

func (l *load) do(req *http.Request) (int, int, error) {
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, int(n), err
}

// finished reports whether every sender is done.
func (l *load) finished() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// waitAnswered waits until n requests have been answered.
func (l *load) waitAnswered(t *testing.T, n int64) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, func() error {
		if got := l.answered.Load(); got < n {
			return fmt.Errorf("%d of %d requests answered", got, n)
		}
		return nil
	})
}

// result is the tally once the load has finished. A request with no
// answer (a transport error) has an unknown outcome, so the run fails. The
// mix must have produced every kind of answer the test is about.
func (l *load) result(t *testing.T) tally {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		t.Fatalf("%d requests got no answer; the first: %v", len(l.errs), l.errs[0])
	}
	keyed, open := l.counts[keyedAPI], l.counts[openAPI]
	limited := l.counts[keyedAPI+"/"+model.HashKey([]byte(limitedKey))]
	switch {
	case keyed == nil || open == nil || limited == nil:
		t.Fatalf("the load reached too little: %v", l.counts)
	case keyed.Requests+open.Requests != totalRequests:
		t.Fatalf("counted %d answers, sent %d", keyed.Requests+open.Requests, totalRequests)
	case limited.Limited == 0 || limited.Status.S2xx == 0:
		t.Fatalf("the limited key got no 429 or no 200 (%v): the scenario does not test limited requests", limited)
	case open.Status.S3xx == 0 || open.Status.S4xx == 0 || open.Status.S5xx == 0:
		t.Fatalf("the keyless API did not see every status class: %v", open)
	}
	for id, p := range l.counts {
		t.Logf("served %s: %v", id, p)
	}
	return l.counts
}

// checkUsage waits until the query API's totals reach what the gateways
// served, then until nothing is left in flight anywhere (the gateways'
// buffers, the JetStream consumer's pending and unacknowledged batches),
// and checks every figure exactly, on every live worker.
func (c *cluster) checkUsage(want tally) {
	c.t.Helper()
	q := c.workers[0]
	for _, api := range []string{keyedAPI, openAPI} {
		testutil.WaitFor(c.t, 30*time.Second, func() error {
			got, _, err := q.totals(api)
			if err != nil {
				return err
			}
			if got.Requests > want[api].Requests {
				c.t.Fatalf("%s: the query API counts %d requests, the gateways served %d: double counted\ngot  %v\nwant %v",
					api, got.Requests, want[api].Requests, got, want[api])
			}
			if got.Requests != want[api].Requests {
				return fmt.Errorf("%s: %d of %d requests counted", api, got.Requests, want[api].Requests)
			}
			return nil
		})
	}
	c.waitDrained()
	for _, w := range c.workers {
		for id, p := range want {
			api, key, _ := strings.Cut(id, "/")
			if key == "" {
				got, late, err := w.totals(api)
				if err != nil {
					c.t.Fatal(err)
				}
				if got != *p {
					c.t.Errorf("%s: /v1/usage/totals of %s\ngot  %v\nwant %v", w.Name, api, got, p)
				}
				if late != 0 {
					c.t.Errorf("%s: %d events of %s counted late (their minute had closed)", w.Name, late, api)
				}
			}
			got, err := w.usage(api, key)
			if err != nil {
				c.t.Fatal(err)
			}
			if got != *p {
				c.t.Errorf("%s: /v1/usage totals of %s\ngot  %v\nwant %v", w.Name, id, got, p)
			}
		}
	}
	c.logMetrics()
}

// waitDrained waits until no gateway holds an event, none was dropped, and
// the shared consumer has no batch pending or unacknowledged: from then on
// nothing can change the totals, so a late double count would show.
func (c *cluster) waitDrained() {
	c.t.Helper()
	for _, g := range c.gateways {
		dropped, err := metric(g.ops, "sluice_usage_events_dropped_total")
		if err != nil {
			c.t.Fatal(err)
		}
		if dropped != 0 {
			c.t.Fatalf("%s dropped %v usage events: its buffer did not hold", g.Name, dropped)
		}
	}
	testutil.WaitFor(c.t, 30*time.Second, func() error {
		for _, g := range c.gateways {
			held, err := metric(g.ops, "sluice_usage_buffer_events")
			if err != nil {
				return err
			}
			if held != 0 {
				return fmt.Errorf("%s holds %v usage events", g.Name, held)
			}
		}
		info, err := c.consumerInfo()
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("consumer: %d batches pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// consumerInfo is the state of the workers' shared JetStream consumer.
func (c *cluster) consumerInfo() (*jetstream.ConsumerInfo, error) {
	if c.js == nil {
		js, err := jetstream.New(c.nats.Conn(c.t))
		if err != nil {
			return nil, err
		}
		c.js = js
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, "SLUICE_USAGE", "sluice-analytics")
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// logMetrics logs what the gateways and workers report of the run.
func (c *cluster) logMetrics() {
	c.t.Helper()
	for _, g := range c.gateways {
		pub, err1 := metric(g.ops, "sluice_usage_events_published_total")
		errs, err2 := metric(g.ops, "sluice_usage_publish_errors_total")
		if err := errors.Join(err1, err2); err != nil {
			c.t.Log(err)
			continue
		}
		c.t.Logf("%s: %v events published, %v publish errors (retried)", g.Name, pub, errs)
	}
	for _, w := range c.workers {
		ev, err1 := metric(w.addr, "sluice_analytics_events_total")
		dup, err2 := metric(w.addr, "sluice_analytics_duplicates_total")
		if err := errors.Join(err1, err2); err != nil {
			c.t.Log(err)
			continue
		}
		c.t.Logf("%s: %v events aggregated, %v duplicates skipped (since its last start)", w.Name, ev, dup)
	}
}
