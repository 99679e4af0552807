//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// fault is one scenario: inject starts the fault, heal ends it. Both run
// on the test goroutine while the load runs; inject returns what heal
// needs. check verifies the fault took effect (so the scenario fails when
// the fault is absent) once the load has ended.
type fault struct {
	name string
	// victimGateway is the index of a gateway the fault kills, or -1:
	// only its requests may go unanswered, and its events in flight
	// may be lost with it.
	victimGateway int
	inject        func(t *testing.T, tp *topology, st *faultState)
	heal          func(t *testing.T, tp *topology, st *faultState)
	check         func(t *testing.T, tp *topology, st *faultState, r *result)
}

// faultState carries what a fault's steps share.
type faultState struct {
	tm            timing
	t0, t1        time.Time // fault injected, fault ended
	redisNode     int       // the Redis node the fault reaches
	natsVictim    *natsNode
	newLeader     string
	before, after any
	killed        string // how a killed process ended
	notes         []string
	syncWriter    *adminWriter
	cancelWriter  context.CancelFunc
	writerDone    chan struct{}
}

func (st *faultState) note(format string, args ...any) {
	st.notes = append(st.notes, fmt.Sprintf(format, args...))
}

// result is one row of the report.
type result struct {
	name                                      string
	held                                      time.Duration
	requests, ok, limited, unavailable, other int
	noAnswer, unauthorized                    int
	unavailableVia                            map[int]int           // 503s by gateway index
	slowest                                   map[int]time.Duration // longest answer during the fault, by gateway
	disruption, recovery                      time.Duration
	published                                 int64 // -1: not known (a gateway's counter died with it)
	answered, counted, lost, double           int64
	lostMax                                   int64 // events a killed gateway may take with it
	maxDuring, maxAfter                       int
	notes                                     []string
}

// runFault runs one scenario: baseline, load, fault, load, drain, figures.
func runFault(t *testing.T, tp *topology, tm timing, f fault) *result {
	tp.waitHealthy(t)
	tp.waitDrained(t)
	base := tp.snapshot(t)

	l := newLoad(tp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx) }()
	defer func() { cancel(); <-done }()

	st := &faultState{tm: tm}
	hold(tm.warm)
	st.t0 = time.Now()
	f.inject(t, tp, st)
	f.heal(t, tp, st)
	st.t1 = time.Now()
	hold(tm.after)
	cancel()
	<-done
	end := time.Now()

	r := &result{name: f.name, held: st.t1.Sub(st.t0), published: -1,
		unavailableVia: map[int]int{}, slowest: map[int]time.Duration{}}
	records := l.result()
	r.tally(t, records, f, st, end)
	if l.skipped.Load() > 0 {
		st.note("%d ticks skipped: %d requests were waiting for an answer", l.skipped.Load(), maxInFlight)
	}

	// Usage: every answered request is one event; published and counted
	// are the deltas since the baseline, once everything has drained.
	// Wait for analytics to count them all; if some never come, go on
	// and report them lost (the check below fails).
	want := base.counted + r.answered - int64(r.lostBound(records, f, st))
	for deadline := time.Now().Add(30 * time.Second); tp.snapshot(t).counted < want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	tp.waitDrained(t)
	now := tp.snapshot(t)
	r.counted = now.counted - base.counted
	if f.victimGateway < 0 {
		var pub float64
		for name, p := range now.published {
			pub += p - base.published[name]
		}
		r.published = int64(pub)
	}
	if r.counted > r.answered {
		r.double = r.counted - r.answered
	} else {
		r.lost = r.answered - r.counted
	}
	if f.victimGateway < 0 && now.retried > base.retried {
		st.note("the gateways retried %v usage batches the stream did not acknowledge", now.retried-base.retried)
	}
	if now.dropped != base.dropped {
		t.Errorf("the gateways dropped %v usage events (buffer full)", now.dropped-base.dropped)
	}
	if r.published >= 0 && (r.published != r.answered || r.counted != r.published) {
		t.Errorf("usage: %d requests answered, %d events published, %d counted: want all equal", r.answered, r.published, r.counted)
	}
	if r.double > 0 {
		t.Errorf("usage: analytics counted %d events more than requests answered (double counted)", r.double)
	}
	if r.lostMax = int64(r.lostBound(records, f, st)); r.lost > r.lostMax {
		t.Errorf("usage: %d events lost, at most %d allowed (events the killed gateway held)", r.lost, r.lostMax)
	}
	if f.check != nil {
		f.check(t, tp, st, r)
	}
	r.notes = append(r.notes, st.notes...)
	return r
}

// normal is whether a request got the answer a healthy cluster gives.
func normal(rec record) bool {
	return rec.status == http.StatusOK || (rec.kind == kindHammer && rec.status == http.StatusTooManyRequests)
}

// tally fills the request figures and checks the rules every fault keeps:
// no 401 or 403 for a valid key; 503 only on the fail-closed API; no
// request unanswered but by a killed gateway; normal service again before
// the load ends; the hammered key's limit held again after the fault.
func (r *result) tally(t *testing.T, records []record, f fault, st *faultState, end time.Time) {
	t.Helper()
	var lastAbnormal time.Time
	perSecond := map[int64]int{}
	for _, rec := range records {
		r.requests++
		switch {
		case rec.status == 0:
			r.noAnswer++
			if rec.gw != f.victimGateway {
				t.Errorf("a %s request to gateway %d got no answer", rec.kind, rec.gw+1)
			}
		case rec.status == http.StatusOK:
			r.ok++
		case rec.status == http.StatusTooManyRequests:
			r.limited++
		case rec.status == http.StatusServiceUnavailable:
			r.unavailable++
			r.unavailableVia[rec.gw]++
		case rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden:
			r.unauthorized++
		default:
			r.other++
		}
		if rec.status != 0 {
			r.answered++
			if !rec.start.Before(st.t0) && rec.start.Before(st.t1) {
				r.slowest[rec.gw] = max(r.slowest[rec.gw], rec.end.Sub(rec.start))
			}
		}
		if !normal(rec) {
			if rec.end.After(lastAbnormal) {
				lastAbnormal = rec.end
			}
			if rec.status == http.StatusServiceUnavailable && rec.kind != kindClosed {
				t.Errorf("a %s request got 503 on the fail-open API", rec.kind)
			}
		}
		if rec.kind == kindHammer && rec.status == http.StatusOK {
			perSecond[rec.end.Unix()]++
		}
	}
	if r.unauthorized > 0 {
		t.Errorf("%d requests with a valid key got 401 or 403", r.unauthorized)
	}
	if r.other > 0 {
		t.Errorf("%d requests got a status other than 200, 429 or 503", r.other)
	}
	if !lastAbnormal.IsZero() {
		r.disruption = lastAbnormal.Sub(st.t0)
		r.recovery = max(0, lastAbnormal.Sub(st.t1))
	}
	if !lastAbnormal.IsZero() && end.Sub(lastAbnormal) < time.Second {
		t.Errorf("service was not normal for the last second of the load (last abnormal answer %v before its end)", end.Sub(lastAbnormal))
	}
	// Seconds of the client's clock: "during" is every second that
	// overlaps the fault or the settling that follows it (afterSettle: the
	// Redis Cluster clients learning the new topology, gateways leaving
	// their fallback limiters), "after" every second that starts later.
	for sec, n := range perSecond {
		start := time.Unix(sec, 0)
		switch {
		case start.Add(time.Second).After(st.t0) && start.Before(st.t1.Add(afterSettle)):
			r.maxDuring = max(r.maxDuring, n)
		case !start.Before(st.t1.Add(afterSettle)):
			r.maxAfter = max(r.maxAfter, n)
		}
	}
	// The client bins by its own clock, Redis decides by its own: a
	// request admitted at the end of one second can be answered in the
	// next, hence the 10% margin.
	if bound := (hammerRate + hammerBurst) * 11 / 10; r.maxAfter > bound {
		t.Errorf("after the fault the hammered key got %d requests through in one second, limit %d/s (burst %d)", r.maxAfter, hammerRate, hammerBurst)
	}
}

// afterSettle is how long after a fault ends its effects may still show in
// the hammered key's count: a Redis Cluster client refreshes its slot map
// and a gateway retries the store limits.store_retry after an error, using
// its fallback limiter meanwhile (docs/reliability.md).
const afterSettle = 2 * time.Second

// lostBound is how many usage events a fault may lose: those the killed
// gateway answered in the last flush interval and ack timeout (1.02s)
// before its death, and none otherwise.
func (r *result) lostBound(records []record, f fault, st *faultState) int {
	if f.victimGateway < 0 {
		return 0
	}
	n := 0
	for _, rec := range records {
		if rec.gw == f.victimGateway && rec.status != 0 && !rec.end.Before(st.t0.Add(-1020*time.Millisecond)) && !rec.end.After(st.t0) {
			n++
		}
	}
	return n
}
