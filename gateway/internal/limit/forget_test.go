package limit

import (
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// The fallback limiter keeps each API's counters apart (shards by API),
// holds at most FallbackMaxKeys across all of them, and forgets an API's
// counters when the API is deleted.
func TestFallbackBoundAndForget(t *testing.T) {
	t.Parallel()
	f := newFallback(1, 3)
	now := time.Now().UnixMicro()
	decide := func(api, key string) Decision {
		var d Decision
		f.decide(&Request{APIID: api, Rules: []Rule{rule(key, 1, time.Hour, 0)}}, &d, now)
		return d
	}
	for _, api := range []string{"a", "b", "c"} {
		if d := decide(api, "k"); d.Outcome != Allowed {
			t.Fatalf("first request on %s: %+v", api, d)
		}
		if d := decide(api, "k"); d.Outcome != Limited {
			t.Fatalf("second request on %s allowed: counters not kept per API", api)
		}
	}
	// Full: a fourth identity goes untracked (allowed, never counted).
	for i := 0; i < 2; i++ {
		if d := decide("d", "k"); d.Outcome != Allowed {
			t.Fatalf("request %d over the bound: %+v", i, d)
		}
	}
	if n := f.keys.Load(); n != 3 {
		t.Fatalf("%d counters held, bound 3", n)
	}
	f.forget("b")
	if n := f.keys.Load(); n != 2 {
		t.Fatalf("%d counters after forgetting b, want 2", n)
	}
	if d := decide("b", "k"); d.Outcome != Allowed {
		t.Fatalf("b's counter survived its deletion: %+v", d)
	}
	if d := decide("a", "k"); d.Outcome != Limited {
		t.Fatal("forgetting b dropped a's counter")
	}
	f.sweep(now + time.Hour.Microseconds() + 1)
	if n := f.keys.Load(); n != 0 {
		t.Fatalf("%d counters after a sweep past their end", n)
	}
}

// Forget drops a deleted API's metric series and queue.
func TestForgetReleasesAPIState(t *testing.T) {
	t.Parallel()
	l := newLimiter(t, client(t, testutil.StartRedis(t)), Options{})
	req := &Request{APIID: "gone", Rules: []Rule{rule("k", 10, time.Second, 0)}}
	check(l, req)
	if n := promtest.CollectAndCount(l.m.decisions); n == 0 {
		t.Fatal("no decision series before Forget")
	}
	if _, ok := l.collectors.Load("gone"); !ok {
		t.Fatal("no collector before Forget")
	}
	l.Forget("gone")
	if n := promtest.CollectAndCount(l.m.decisions); n != 0 {
		t.Fatalf("%d decision series left after Forget", n)
	}
	if _, ok := l.collectors.Load("gone"); ok {
		t.Fatal("collector kept after Forget")
	}
	if d := check(l, req); d.Outcome != Allowed {
		t.Fatalf("a request after Forget: %+v", d)
	}
}

// Lease refills running at once are bounded: with every slot taken, a low
// lease is not refilled in the background.
func TestRefillSlotsBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(t, client(t, testutil.StartRedis(t)), Options{})
	for i := 0; i < maxRefills; i++ {
		if !l.refillSlot() {
			t.Fatalf("slot %d refused below the bound", i)
		}
	}
	if l.refillSlot() {
		t.Fatal("a slot past the bound")
	}
	<-l.refills
	if !l.refillSlot() {
		t.Fatal("a released slot was not reusable")
	}
}
