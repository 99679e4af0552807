package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// TestRangeAndStep checks that a long range is summed server side by a
// step (auto: the shortest giving at most 500 points), that every step
// sums the minutes it covers exactly, and that a custom range keeps only
// its minutes.
func TestRangeAndStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now()
	s := e.start(t, e.config(), WithClock(func() time.Time { return now }))
	old := now.Add(-3 * 24 * time.Hour).Truncate(time.Hour).Add(17 * time.Minute)
	mk := func(prefix string, n int, at time.Time, units int64) []usage.Event {
		var evs []usage.Event
		for i := 0; i < n; i++ {
			evs = append(evs, usage.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Time: at.Add(time.Duration(i) * time.Second).UnixNano(),
				API: "llm", KeyHash: "h", Endpoint: "/chat", Status: 200, Units: units})
		}
		return evs
	}
	e.publish(t, "llm", "old", mk("old", 30, old, 11)) // one minute 3 days ago
	e.publish(t, "llm", "new", mk("new", 20, now.Add(-5*time.Minute), 5))

	type series struct {
		Step   string `json:"step"`
		Series []struct {
			T        time.Time `json:"t"`
			Requests int64     `json:"requests"`
			Units    int64     `json:"units"`
		} `json:"series"`
		Totals struct {
			Requests int64 `json:"requests"`
			Units    int64 `json:"units"`
		} `json:"totals"`
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		var u series
		if err := getJSON(s.Addr(), "/v1/usage?api=llm&from=-7d", &u); err != nil {
			return err
		}
		if u.Totals.Requests != 50 || u.Totals.Units != 30*11+20*5 {
			return fmt.Errorf("7 days: %d requests %d units, want 50 and %d", u.Totals.Requests, u.Totals.Units, 30*11+20*5)
		}
		return nil
	})
	tests := []struct {
		query      string
		step       string
		points     int
		requests   int64
		units      int64
		oldInPoint time.Time // the point holding the old minute
	}{
		{"from=-7d", "1h", 7*24 + 1, 50, 430, old.Truncate(time.Hour)},
		{"from=-7d&step=1d", "1d", 8, 50, 430, old.Truncate(24 * time.Hour)},
		{"from=-24h", "5m", 24*12 + 1, 20, 100, time.Time{}},
		{"from=-1h&step=auto", "1m", 61, 20, 100, time.Time{}},
		{"from=" + old.Add(-time.Minute).Format(time.RFC3339) + "&to=" + old.Add(time.Hour).Format(time.RFC3339) + "&step=15m",
			"15m", 5, 30, 330, old.Truncate(15 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			var u series
			if err := getJSON(s.Addr(), "/v1/usage?api=llm&"+tc.query, &u); err != nil {
				t.Fatal(err)
			}
			if u.Step != tc.step || len(u.Series) < tc.points-1 || len(u.Series) > tc.points {
				t.Fatalf("step %s with %d points, want %s with %d", u.Step, len(u.Series), tc.step, tc.points)
			}
			if u.Totals.Requests != tc.requests || u.Totals.Units != tc.units {
				t.Fatalf("totals %+v, want %d requests %d units", u.Totals, tc.requests, tc.units)
			}
			var sum, units int64
			for _, p := range u.Series {
				sum += p.Requests
				units += p.Units
				if !tc.oldInPoint.IsZero() && p.T.Equal(tc.oldInPoint) && (p.Requests != 30 || p.Units != 330) {
					t.Fatalf("point %v: %d requests %d units, want the old minute's 30 and 330", p.T, p.Requests, p.Units)
				}
			}
			if sum != tc.requests || units != tc.units {
				t.Fatalf("series sums to %d requests %d units, want %d %d", sum, units, tc.requests, tc.units)
			}
		})
	}
}
