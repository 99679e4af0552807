package service

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
// and rollup message), and events after that are counted as late.
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
	sub, err := e.nc.Subscribe(bus.RollupPrefix+"orders", func(m *nats.Msg) {
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
		n, err := rdb.XLen(t.Context(), "sluice:{usage:orders}:s").Result()
		if err != nil || n != 1 {
			return fmt.Errorf("api stream has %d entries (%v), want 1", n, err)
		}
		if k, _ := rdb.XLen(t.Context(), "sluice:{usage:orders}:k:kk").Result(); k != 1 {
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
	testutil.WaitFor(t, 5*time.Second, series(15))
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
