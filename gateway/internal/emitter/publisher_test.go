package emitter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// newPublisher starts a publisher shut down when the test ends.
func newPublisher(t testing.TB, nc *nats.Conn, opts Options) *Publisher {
	t.Helper()
	p := startPublisher(t, nc, opts)
	t.Cleanup(func() { _ = shutdown(p, time.Second) })
	return p
}

// startPublisher starts a publisher the test shuts down itself.
func startPublisher(t testing.TB, nc *nats.Conn, opts Options) *Publisher {
	t.Helper()
	p, err := New(nc, "node-1", opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	return p
}

// shutdown shuts p down within d.
func shutdown(p *Publisher, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Shutdown(ctx)
}

func event(api string, i int) *usage.Event {
	return &usage.Event{Time: time.Now().UnixNano(), API: api, Method: "GET",
		Path: "/items/" + strconv.Itoa(i), Status: 200, Latency: 120}
}

// streamEvents reads every message of the usage stream and decodes it.
func streamEvents(t testing.TB, nc *nats.Conn) (msgs int, events []usage.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.Names{}.UsageStream())
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int(info.State.Msgs)
	if total == 0 {
		return 0, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for msgs < total {
		batch, err := c.Fetch(total-msgs, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			msgs++
			if v := m.Headers().Get(usage.HeaderVersion); v != usage.Version {
				t.Fatalf("message version header %q", v)
			}
			if m.Headers().Get(usage.HeaderMsgID) == "" {
				t.Fatal("message without Nats-Msg-Id")
			}
			err := usage.DecodeBatch(m.Data(), func(e *usage.Event) error {
				if m.Subject() != (bus.Names{}).UsageSubject(e.API) {
					return fmt.Errorf("event of %s on %s", e.API, m.Subject())
				}
				events = append(events, *e)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return msgs, events
}

// checkExactly fails unless events holds n events with distinct ids.
func checkExactly(t testing.TB, events []usage.Event, n int) {
	t.Helper()
	ids := make(map[string]bool, len(events))
	for _, e := range events {
		if ids[e.ID] {
			t.Fatalf("event id %s twice", e.ID)
		}
		ids[e.ID] = true
		if e.Node != "node-1" {
			t.Fatalf("event node %q", e.Node)
		}
	}
	if len(events) != n {
		t.Fatalf("stream holds %d events, want exactly %d", len(events), n)
	}
}

func waitPublished(t testing.TB, p *Publisher, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got := promtest.ToFloat64(p.m.published); got != float64(n) {
			return fmt.Errorf("published %v of %d (held %d)", got, n, p.held.Load())
		}
		return nil
	})
}

func TestEveryEventArrivesOnce(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	p := newPublisher(t, nc, Options{BatchSize: 50, FlushInterval: 20 * time.Millisecond})
	const n = 1000
	for i := 0; i < n; i++ {
		if !p.Emit(event("api-"+strconv.Itoa(i%3), i)) {
			t.Fatalf("event %d dropped", i)
		}
	}
	waitPublished(t, p, n)
	msgs, events := streamEvents(t, nc)
	checkExactly(t, events, n)
	if batches := promtest.ToFloat64(p.m.batches); int(batches) != msgs || msgs >= n {
		t.Fatalf("%d messages, %v batches counted, for %d events", msgs, batches, n)
	}
	if d := promtest.ToFloat64(p.m.dropped); d != 0 {
		t.Fatalf("dropped %v", d)
	}
}

// Events emitted from many goroutines at once land in different shards:
// each arrives once, with an id no other event has, on its API's subject,
// in batches of at most BatchSize.
func TestConcurrentEmitters(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	const batchSize, workers, each = 100, 8, 1500
	p := newPublisher(t, nc, Options{BatchSize: batchSize, FlushInterval: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if !p.Emit(event("api-"+strconv.Itoa(i%3), w*each+i)) {
					t.Errorf("worker %d: event %d dropped", w, i)
					return
				}
			}
		})
	}
	wg.Wait()
	waitPublished(t, p, workers*each)
	msgs, events := streamEvents(t, nc)
	checkExactly(t, events, workers*each)
	paths := make(map[string]bool, len(events))
	for _, e := range events {
		if paths[e.Path] {
			t.Fatalf("event %s twice", e.Path)
		}
		paths[e.Path] = true
	}
	if min := workers * each / batchSize; msgs < min {
		t.Fatalf("%d messages for %d events in batches of at most %d", msgs, workers*each, batchSize)
	}
}

// An API's events in several shards leave in one message when they fit:
// the flush joins them.
func TestShardsJoinedIntoOneBatch(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	p := startPublisher(t, nc, Options{BatchSize: 1000, FlushInterval: time.Hour})
	const n = 40
	for i := range n {
		p.add(&p.shards[i%len(p.shards)], event("a", i)) // every shard holds some
		p.held.Add(1)
	}
	if err := shutdown(p, 5*time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	msgs, events := streamEvents(t, nc)
	checkExactly(t, events, n)
	if len(p.shards) < 2 || msgs != 1 {
		t.Fatalf("%d messages from %d shards, want them joined into 1", msgs, len(p.shards))
	}
}

func TestNATSDownBuffersThenDrops(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	const size = 100
	p := newPublisher(t, nc, Options{BufferSize: size, BatchSize: 10, FlushInterval: 10 * time.Millisecond,
		AckTimeout: 200 * time.Millisecond})
	srv.Stop()

	start := time.Now()
	accepted := 0
	for i := 0; i < size+50; i++ {
		if p.Emit(event("a", i)) {
			accepted++
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("emitting with NATS down took %v", el)
	}
	if accepted != size {
		t.Fatalf("accepted %d, want the buffer's %d", accepted, size)
	}
	if d := promtest.ToFloat64(p.m.dropped); d != 50 {
		t.Fatalf("dropped %v, want 50", d)
	}

	srv.Start()
	waitPublished(t, p, size)
	// Room again: new events are accepted and published.
	for i := 0; i < 5; i++ {
		if !p.Emit(event("a", 1000+i)) {
			t.Fatal("event dropped after recovery")
		}
	}
	waitPublished(t, p, size+5)
	_, events := streamEvents(t, nc)
	checkExactly(t, events, size+5)
}

func TestNATSDownAtStart(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	srv.Stop()
	p := newPublisher(t, nc, Options{FlushInterval: 10 * time.Millisecond, AckTimeout: 200 * time.Millisecond})
	for i := 0; i < 20; i++ {
		if !p.Emit(event("a", i)) {
			t.Fatal("dropped")
		}
	}
	srv.Start()
	waitPublished(t, p, 20)
	_, events := streamEvents(t, nc)
	checkExactly(t, events, 20)
}

func TestShutdownFlushes(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	p := startPublisher(t, nc, Options{BatchSize: 1000, FlushInterval: time.Hour})
	for i := 0; i < 10; i++ {
		p.Emit(event("a", i))
	}
	if err := shutdown(p, 5*time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if p.Emit(event("a", 99)) {
		t.Fatal("event accepted after shutdown")
	}
	_, events := streamEvents(t, nc)
	checkExactly(t, events, 10)
}

func TestShutdownEndsWithContext(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	p := startPublisher(t, nc, Options{AckTimeout: 100 * time.Millisecond})
	srv.Stop()
	p.Emit(event("a", 1))
	if err := shutdown(p, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown with NATS down: %v, want deadline exceeded", err)
	}
	if d := promtest.ToFloat64(p.m.dropped); d != 1 {
		t.Fatalf("dropped %v, want the 1 unpublished event", d)
	}
}

func TestRetriedBatchIsDeduplicated(t *testing.T) {
	t.Parallel()
	srv := testutil.StartNATS(t)
	nc := srv.Conn(t)
	p := newPublisher(t, nc, Options{})
	b := &batch{api: "a", subject: p.subject("a"), id: p.batchID(1)}
	b.data = usage.AppendJSON(nil, &usage.Event{ID: "e1", Node: "node-1", API: "a"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		ack, err := p.js.PublishMsg(ctx, b.message())
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if ack.Duplicate != (i == 1) {
			t.Fatalf("publish %d: duplicate=%v", i, ack.Duplicate)
		}
	}
	msgs, events := streamEvents(t, nc)
	if msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", msgs)
	}
	checkExactly(t, events, 1)
}

func TestEventIDsAreUnique(t *testing.T) {
	t.Parallel()
	a, _ := New(&nats.Conn{}, "n", Options{}, zerolog.Nop(), prometheus.NewRegistry())
	b, _ := New(&nats.Conn{}, "n", Options{}, zerolog.Nop(), prometheus.NewRegistry())
	if a == nil || b == nil || a.boot == b.boot {
		t.Fatal("two publishers share a boot id")
	}
	if x, y := string(a.eventID(nil, 35)), string(a.eventID(nil, 36)); x == y || x != a.boot+"-z" {
		t.Fatalf("event ids %q %q", x, y)
	}
}

// BenchmarkEmit measures what a request pays to emit: encoding into a
// shard. The publishing loop is not started; the benchmark takes the
// shards' batches itself every 256 events so the buffer never fills (with
// the loop, a local JetStream acknowledges far fewer events per second
// than Emit takes and the benchmark would time the drop path).
func BenchmarkEmit(b *testing.B) {
	p, err := New(&nats.Conn{}, "node-1", Options{}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	drain := func() {
		for _, bt := range p.take(nil, true, false) {
			p.held.Add(-int64(bt.n))
			p.recycle(bt)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := event("bench", 1)
		for i := 0; pb.Next(); i++ {
			if !p.Emit(e) {
				b.Error("dropped")
				return
			}
			if i%256 == 255 {
				drain()
			}
		}
	})
}

// The usage stream's settings belong to the analytics workers: a gateway
// publisher starting, or reconnecting after a NATS restart, publishes into
// the stream as it is and changes none of them.
func TestPublisherLeavesStreamSettings(t *testing.T) {
	t.Parallel()
	ns := testutil.StartNATS(t)
	nc := ns.Conn(t)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	owned := bus.StreamOptions{MaxAge: 5 * time.Hour, MaxBytes: 64 << 20, Replicas: 1, DedupWindow: 7 * time.Minute}
	s, err := bus.ConfigureUsageStream(ctx, js, bus.Names{}, owned)
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	settings := func(c jetstream.StreamConfig) string {
		return fmt.Sprintf("max_age=%v max_bytes=%d replicas=%d dedup=%v subjects=%v", c.MaxAge, c.MaxBytes, c.Replicas, c.Duplicates, c.Subjects)
	}
	check := func(when string) {
		t.Helper()
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := settings(info.Config), settings(before.Config); got != want {
			t.Fatalf("%s: stream settings %s, want %s", when, got, want)
		}
	}

	gw := ns.Conn(t)
	p := newPublisher(t, gw, Options{FlushInterval: 10 * time.Millisecond})
	wait := func(n int) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, func() error {
			if _, evs := streamEvents(t, nc); len(evs) != n {
				return fmt.Errorf("%d events in the stream, want %d", len(evs), n)
			}
			return nil
		})
	}
	p.Emit(event("a", 1))
	wait(1)
	check("after a gateway started")

	ns.Stop()
	ns.Start()
	p.Emit(event("a", 2))
	wait(2)
	check("after a NATS restart and reconnect")

	p2 := newPublisher(t, ns.Conn(t), Options{FlushInterval: 10 * time.Millisecond})
	p2.Emit(event("b", 1))
	wait(3)
	check("after a second gateway started")
}
