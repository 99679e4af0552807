package service

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

func events(n int, prefix string, at time.Time) []usage.Event {
	out := make([]usage.Event, n)
	for i := range out {
		out[i] = usage.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Time: at.UnixNano(), API: "orders",
			KeyHash: "kk", Endpoint: "/o", Status: 200, Latency: 1500}
	}
	return out
}

// TestGraceAndLate drives a clock through one minute: events inside the
// grace window land in their minute, the minute closes once (stream entry
// and rollup message), and events after that are counted as late and
// still reach the minute's series (a correction), which again equals the
// totals.
func TestGraceAndLate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	minute := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var clock atomic.Int64
	set := func(d time.Duration) { clock.Store(minute.Add(d).UnixNano()) }
	set(30 * time.Second)
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cfg := e.config()
	cfg.Aggregation.Grace = 10 * time.Second
	rollups := make(chan rollup.Rollup, 10)
	sub, err := e.nc.Subscribe(bus.Names{}.RollupSubject("orders"), func(m *nats.Msg) {
		var r rollup.Rollup
		if json.Unmarshal(m.Data, &r) == nil {
			rollups <- r
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	svcs := []*Service{e.start(t, cfg, WithClock(now)), e.start(t, cfg, WithClock(now))}
	addr := svcs[0].Addr()
	from := fmt.Sprintf("&from=%d&to=%d", minute.Unix(), minute.Add(2*time.Minute).Unix())
	series := func(want int) func() error {
		return func() error {
			var u usageResp
			if err := getJSON(addr, "/v1/usage?api=orders"+from, &u); err != nil {
				return err
			}
			if got := u.Series[0].Requests; got != want || u.Totals.Requests != want {
				return fmt.Errorf("minute has %d (total %d), want %d", got, u.Totals.Requests, want)
			}
			return nil
		}
	}

	e.publish(t, "orders", "b1", events(10, "a", minute.Add(10*time.Second)))
	testutil.WaitFor(t, 10*time.Second, series(10))

	set(65 * time.Second) // minute over, grace not: still open
	e.publish(t, "orders", "b2", events(5, "b", minute.Add(20*time.Second)))
	testutil.WaitFor(t, 10*time.Second, series(15))

	set(71 * time.Second) // grace over: the minute closes, once
	var r rollup.Rollup
	select {
	case r = <-rollups:
	case <-time.After(10 * time.Second):
		t.Fatal("no rollup published")
	}
	if r.Requests != 15 || r.Minute != minute.UnixMilli() || r.API != "orders" || r.P50 < 1 || r.P50 > 1.5 {
		t.Fatalf("rollup = %+v", r)
	}
	rdb := e.redis.Client(t)
	testutil.WaitFor(t, 5*time.Second, func() error {
		n, err := rdb.XLen(t.Context(), aggregates.Layout{}.StreamKey("orders", aggregates.DimAPI, "")).Result()
		if err != nil || n != 1 {
			return fmt.Errorf("api stream has %d entries (%v), want 1", n, err)
		}
		if k, _ := rdb.XLen(t.Context(), aggregates.Layout{}.StreamKey("orders", aggregates.DimKey, "kk")).Result(); k != 1 {
			return fmt.Errorf("key stream has %d entries, want 1", k)
		}
		return nil
	})

	e.publish(t, "orders", "b3", events(3, "c", minute.Add(30*time.Second)))
	testutil.WaitFor(t, 10*time.Second, func() error {
		var tot struct {
			Late     int `json:"late"`
			Requests int `json:"requests"`
		}
		if err := getJSON(addr, "/v1/usage/totals?api=orders", &tot); err != nil {
			return err
		}
		if tot.Late != 3 || tot.Requests != 18 {
			return fmt.Errorf("totals: late %d requests %d, want 3 and 18", tot.Late, tot.Requests)
		}
		return nil
	})
	testutil.WaitFor(t, 5*time.Second, series(18))
	late := metric(t, svcs[0].Addr(), "sluice_analytics_late_events_total") + metric(t, svcs[1].Addr(), "sluice_analytics_late_events_total")
	if late != 3 {
		t.Fatalf("late metric = %v, want 3", late)
	}
	select {
	case r := <-rollups:
		t.Fatalf("minute closed twice: %+v", r)
	default:
	}
}

// A Redis outage longer than the grace across a minute boundary: the
// minute closes with what was recorded before the outage; events held back
// meanwhile (in JetStream, or in a gateway's buffer and published after the
// close) arrive late. They are counted as late and added to the minute as a
// correction, so once the outage is over the per-minute series — of the
// API, of the key and summed by endpoint — equal the totals. The clock is
// injected, so the minute boundary costs no waiting.
func TestRedisOutageAcrossMinuteBoundary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	minute := time.Now().Add(-time.Hour).Truncate(time.Minute)
	var clock atomic.Int64
	set := func(d time.Duration) { clock.Store(minute.Add(d).UnixNano()) }
	set(30 * time.Second)
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	cfg := e.config()
	cfg.Aggregation.Grace = 10 * time.Second
	svc := e.start(t, cfg, WithClock(now))
	addr := svc.Addr()
	rdb := e.redis.Client(t)
	from := fmt.Sprintf("&from=%d&to=%d", minute.Unix(), minute.Add(2*time.Minute).Unix())
	agree := func(want int) func() error {
		return func() error {
			var u, k usageResp
			if err := getJSON(addr, "/v1/usage?api=orders"+from, &u); err != nil {
				return err
			}
			if err := getJSON(addr, "/v1/usage?api=orders&key=kk"+from, &k); err != nil {
				return err
			}
			var top struct {
				Items []struct {
					Requests int `json:"requests"`
				} `json:"items"`
			}
			if err := getJSON(addr, "/v1/usage/top?by=endpoint&api=orders"+from, &top); err != nil {
				return err
			}
			var tot struct {
				Requests int `json:"requests"`
			}
			if err := getJSON(addr, "/v1/usage/totals?api=orders", &tot); err != nil {
				return err
			}
			var sum, keySum, byEndpoint int
			for _, p := range u.Series {
				sum += p.Requests
			}
			for _, p := range k.Series {
				keySum += p.Requests
			}
			for _, it := range top.Items {
				byEndpoint += it.Requests
			}
			if sum != want || keySum != want || byEndpoint != want || tot.Requests != want {
				return fmt.Errorf("api series %d, key series %d, by endpoint %d, running totals %d; want %d", sum, keySum, byEndpoint, tot.Requests, want)
			}
			return nil
		}
	}

	e.publish(t, "orders", "before", events(10, "a", minute.Add(10*time.Second)))
	testutil.WaitFor(t, 10*time.Second, agree(10))

	e.redis.Stop()
	e.publish(t, "orders", "during", events(20, "b", minute.Add(40*time.Second)))
	set(2 * time.Minute) // the grace of the minute is over while Redis is down
	e.redis.Start()
	testutil.WaitFor(t, 10*time.Second, func() error { // the minute closed
		n, err := rdb.XLen(t.Context(), aggregates.Layout{}.StreamKey("orders", aggregates.DimAPI, "")).Result()
		if err != nil || n != 1 {
			return fmt.Errorf("api stream has %d entries (%v), want 1", n, err)
		}
		return nil
	})
	e.publish(t, "orders", "buffered", events(7, "c", minute.Add(50*time.Second)))
	testutil.WaitFor(t, 10*time.Second, agree(37))
	var tot struct {
		Late int `json:"late"`
	}
	if err := getJSON(addr, "/v1/usage/totals?api=orders", &tot); err != nil {
		t.Fatal(err)
	}
	if tot.Late < 7 {
		t.Fatalf("late = %d, want at least the 7 events published after the close", tot.Late)
	}
}
