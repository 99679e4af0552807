package aggregates_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// hourlyFixture records usage of API "llm" in minutes of hours h0 and
// h0+1h: two keys, two endpoints, statuses and units.
type hourlyFixture struct {
	t   *testing.T
	st  *aggregates.Store
	h0  int64
	seq int
	// want counts the requests and units sent per series and hour.
	want map[aggregates.Ref]map[int64][2]int64
}

var hourlyRefs = []aggregates.Ref{{Dim: aggregates.DimAPI}, {Dim: aggregates.DimKey, Name: "h1"}, {Dim: aggregates.DimKey, Name: "h2"},
	{Dim: aggregates.DimEndpoint, Name: "/a"}, {Dim: aggregates.DimEndpoint, Name: "/b"}}

// batch returns a message of n events in minute m (minutes after h0).
func (f *hourlyFixture) batch(m, n int) []byte {
	var data []byte
	at := time.UnixMilli(f.h0).Add(time.Duration(m) * time.Minute)
	for i := 0; i < n; i++ {
		f.seq++
		ev := usage.Event{ID: fmt.Sprintf("e%d", f.seq), Time: at.Add(time.Duration(i) * time.Second).UnixNano(),
			KeyHash: []string{"h1", "h2"}[f.seq%2], Endpoint: []string{"/a", "/b"}[f.seq%3%2],
			Status: []int{200, 404, 503}[f.seq%3], Latency: int64(100 * f.seq), Units: int64(f.seq % 7)}
		data = usage.AppendJSON(data, &ev)
		hour := aggregates.HourOf(at.UnixMilli())
		for _, r := range []aggregates.Ref{{Dim: aggregates.DimAPI}, {Dim: aggregates.DimKey, Name: ev.KeyHash}, {Dim: aggregates.DimEndpoint, Name: ev.Endpoint}} {
			if f.want[r] == nil {
				f.want[r] = map[int64][2]int64{}
			}
			w := f.want[r][hour]
			f.want[r][hour] = [2]int64{w[0] + 1, w[1] + ev.Units}
		}
	}
	return data
}

// apply records msgs as one fetched batch at now and returns how many
// were already recorded.
func (f *hourlyFixture) apply(now time.Time, msgs ...[]byte) int {
	idx := make([]int, len(msgs))
	for i := range idx {
		idx[i] = i
	}
	res := f.st.Apply(context.Background(), []*rollup.APIBatch{rollup.Build("llm", msgs, idx)}, now)
	if res[0].Err != nil {
		f.t.Fatal(res[0].Err)
	}
	return len(res[0].Dups)
}

func (f *hourlyFixture) close(now time.Time) {
	if _, err := f.st.Close(context.Background(), "llm", rollup.Cutoff(now, 10*time.Second), now); err != nil {
		f.t.Fatal(err)
	}
}

// check compares, for every series and both hours, the hour read from
// the hourly buckets with the sum of its minutes and with what was sent,
// and the hourly sums of keys and endpoints with their minute sums.
func (f *hourlyFixture) check(stage string) {
	ctx := context.Background()
	for _, r := range hourlyRefs {
		hours, err := f.st.HourSeries(ctx, "llm", r, f.h0, f.h0+aggregates.HourMS)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, h := range []int64{f.h0, f.h0 + aggregates.HourMS} {
			mins, err := f.st.Series(ctx, "llm", r, h, h+aggregates.HourMS-rollup.MinuteMS)
			if err != nil {
				f.t.Fatal(err)
			}
			var sum rollup.Counters
			for _, c := range mins {
				sum.Merge(c)
			}
			var got rollup.Counters
			if c := hours[h]; c != nil {
				got = *c
			}
			if got != sum {
				f.t.Errorf("%s: %c %q hour %d: hourly %v, sum of minutes %v", stage, r.Dim, r.Name, (h-f.h0)/aggregates.HourMS, got, sum)
			}
			if w := f.want[r][h]; got[rollup.FRequests] != w[0] || got[rollup.FUnits] != w[1] {
				f.t.Errorf("%s: %c %q hour %d: %d requests %d units, sent %d %d", stage, r.Dim, r.Name,
					(h-f.h0)/aggregates.HourMS, got[rollup.FRequests], got[rollup.FUnits], w[0], w[1])
			}
		}
	}
	for _, dim := range []byte{aggregates.DimKey, aggregates.DimEndpoint} {
		hs, err := f.st.HourSums(ctx, "llm", dim, f.h0, f.h0)
		if err != nil {
			f.t.Fatal(err)
		}
		ms, err := f.st.Sums(ctx, "llm", dim, f.h0, f.h0+aggregates.HourMS-rollup.MinuteMS)
		if err != nil {
			f.t.Fatal(err)
		}
		if len(hs) != len(ms) {
			f.t.Errorf("%s: dim %c: %d hourly sums, %d minute sums", stage, dim, len(hs), len(ms))
		}
		for n, c := range ms {
			if hs[n] == nil || *hs[n] != *c {
				f.t.Errorf("%s: dim %c %q: hourly sum %v, minute sum %v", stage, dim, n, hs[n], c)
			}
		}
	}
}

// TestHourlyRollupsEqualSumOfMinutes checks that an hour read from the
// hourly buckets holds exactly its minutes, for the API, each key and each
// endpoint, at every stage: minutes open, some closed, the hour closed,
// late events while the hour is open and after it closed, and each batch
// delivered again (counted once).
func TestHourlyRollupsEqualSumOfMinutes(t *testing.T) {
	t.Parallel()
	h0 := aggregates.HourOf(time.Now().Add(-5 * time.Hour).UnixMilli())
	f := &hourlyFixture{t: t, h0: h0, want: map[aggregates.Ref]map[int64][2]int64{},
		st: aggregates.New(testutil.StartRedis(t).Client(t), time.Hour, 24*time.Hour).WithHourlyRetention(48 * time.Hour)}
	at := func(m int) time.Time { return time.UnixMilli(h0).Add(time.Duration(m) * time.Minute) }

	a, b := f.batch(0, 5), f.batch(1, 4)
	c := append(f.batch(30, 6), f.batch(59, 3)...)
	if dups := f.apply(at(0), a, b, c); dups != 0 {
		t.Fatalf("%d duplicates in the first delivery", dups)
	}
	f.check("all minutes open")
	if dups := f.apply(at(0), b); dups != 1 {
		t.Fatalf("redelivered batch: %d duplicates, want 1", dups)
	}
	f.close(at(31)) // minutes 0..29 closed, the hour open
	f.check("hour open, minutes 0-29 closed")

	late := f.batch(1, 7) // minute 1 is closed: late, while its hour is open
	d := f.batch(60, 2)   // the next hour
	if dups := f.apply(at(31), late, d); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if dups := f.apply(at(31), late); dups != 1 {
		t.Fatalf("redelivered late batch: %d duplicates, want 1", dups)
	}
	f.check("late events in an open hour")

	f.close(at(62)) // the hour and minute 60 closed
	f.check("hour closed")
	if dups := f.apply(at(62), a, c); dups != 2 {
		t.Fatalf("redelivered batches after the close: %d duplicates, want 2", dups)
	}
	lateAfter := f.batch(2, 4) // minute 2, after its hour closed
	if dups := f.apply(at(62), lateAfter); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	if dups := f.apply(at(62), lateAfter); dups != 1 {
		t.Fatalf("redelivered late batch: %d duplicates, want 1", dups)
	}
	f.check("late events after the hour closed")
	f.close(at(125))
	f.check("next hour closed")
}

// TestLightKeysMinutesSummedIntoOther checks aggregation.
// key_minute_min_requests: a key below it in a minute has no entry of its
// own in that minute, its counters are in the key "~other" (so the keys'
// minutes still sum to the API's), and its hour holds it exactly.
func TestLightKeysMinutesSummedIntoOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := aggregates.New(testutil.StartRedis(t).Client(t), time.Hour, 24*time.Hour).WithKeyMinuteMin(3)
	h0 := time.UnixMilli(aggregates.HourOf(time.Now().Add(-3 * time.Hour).UnixMilli()))
	var data []byte
	for i, key := range []string{"heavy", "heavy", "heavy", "heavy", "light1", "light2", "light2", ""} {
		ev := usage.Event{ID: fmt.Sprintf("e%d", i), Time: h0.Add(time.Second).UnixNano(), KeyHash: key, Status: 200, Units: int64(i + 1)}
		data = usage.AppendJSON(data, &ev)
	}
	if r := st.Apply(ctx, []*rollup.APIBatch{rollup.Build("llm", [][]byte{data}, []int{0})}, h0); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	now := h0.Add(time.Hour + 2*time.Minute)
	if _, err := st.Close(ctx, "llm", rollup.Cutoff(now, 10*time.Second), now); err != nil {
		t.Fatal(err)
	}
	m := h0.UnixMilli()
	tests := []struct {
		key            string
		minute, hourly [2]int64 // requests, units
	}{
		{"heavy", [2]int64{4, 10}, [2]int64{4, 10}},
		{"light1", [2]int64{0, 0}, [2]int64{1, 5}},
		{"light2", [2]int64{0, 0}, [2]int64{2, 13}},
		{rollup.NoName, [2]int64{1, 8}, [2]int64{1, 8}}, // keyless keeps its minutes
		{rollup.OtherKey, [2]int64{3, 18}, [2]int64{0, 0}},
	}
	for _, tc := range tests {
		ref := aggregates.Ref{Dim: aggregates.DimKey, Name: tc.key}
		mins, err := st.Series(ctx, "llm", ref, m, m)
		if err != nil {
			t.Fatal(err)
		}
		hours, err := st.HourSeries(ctx, "llm", ref, m, m)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what string
			got  *rollup.Counters
			want [2]int64
		}{{"minute", mins[m], tc.minute}, {"hour", hours[m], tc.hourly}} {
			var got [2]int64
			if c.got != nil {
				got = [2]int64{c.got[rollup.FRequests], c.got[rollup.FUnits]}
			}
			if got != c.want {
				t.Errorf("key %q %s: %d requests %d units, want %v", tc.key, c.what, got[0], got[1], c.want)
			}
		}
	}
	sums, err := st.Sums(ctx, "llm", aggregates.DimKey, m, m)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range sums {
		n += c[rollup.FRequests]
	}
	if n != 8 {
		t.Errorf("the keys' minute sums hold %d requests, want the API's 8", n)
	}
}

// TestCloseMergesKeyFieldsOfOlderBuckets checks that a minute whose bucket
// holds key fields (written by a version without key logs, during an
// upgrade) and whose key log holds more of the same key closes into one
// entry holding both, in the minute and in the hour.
func TestCloseMergesKeyFieldsOfOlderBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testutil.StartRedis(t).Client(t)
	st := aggregates.New(rdb, time.Hour, 24*time.Hour)
	h0 := time.UnixMilli(aggregates.HourOf(time.Now().Add(-3 * time.Hour).UnixMilli()))
	ev := usage.Event{ID: "e1", Time: h0.UnixNano(), KeyHash: "h1", Status: 200, Units: 5}
	if r := st.Apply(ctx, []*rollup.APIBatch{rollup.Build("llm", [][]byte{usage.AppendJSON(nil, &ev)}, []int{0})}, h0); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	p, m := st.Layout().Prefix("llm"), fmt.Sprint(h0.UnixMilli())
	for f, v := range map[string]int64{"n|k|h1": 2, "units|k|h1": 7, "n|a|": 2, "units|a|": 7} {
		if err := rdb.HIncrBy(ctx, p+"m:"+m, f, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	now := h0.Add(time.Hour + 2*time.Minute)
	if _, err := st.Close(ctx, "llm", rollup.Cutoff(now, 10*time.Second), now); err != nil {
		t.Fatal(err)
	}
	ref := aggregates.Ref{Dim: aggregates.DimKey, Name: "h1"}
	mins, err := st.Series(ctx, "llm", ref, h0.UnixMilli(), h0.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	hours, err := st.HourSeries(ctx, "llm", ref, h0.UnixMilli(), h0.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]*rollup.Counters{"minute": mins[h0.UnixMilli()], "hour": hours[h0.UnixMilli()]} {
		if c == nil || c[rollup.FRequests] != 3 || c[rollup.FUnits] != 12 {
			t.Errorf("%s of h1: %v, want 3 requests and 12 units", what, c)
		}
	}
}

// TestHostileKeyNames: a usage event's key is whatever the message says.
// Names holding the key log's separators (':', ' ', '=', newline), the
// hash fields' ('|'), a decimal prefix, the name of the light keys'
// bucket, or 4 KiB of bytes each count as themselves alone, while the
// minute is open (read from the key log) and once it is closed (in the
// minute and the hour), and no other key's counts move.
func TestHostileKeyNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := aggregates.New(testutil.StartRedis(t).Client(t), time.Hour, 24*time.Hour)
	h0 := time.UnixMilli(aggregates.HourOf(time.Now().Add(-3 * time.Hour).UnixMilli()))
	keys := []string{"plain", "a:b", "5:abcde 9=9\n", "x|k|y", "n=1 u=2", "\n\n", rollup.OtherKey,
		"12:", strings.Repeat("z", 4096), "ключ ✓"}
	var data []byte
	for i, key := range keys {
		for j := 0; j <= i; j++ { // key i has i+1 events
			ev := usage.Event{ID: fmt.Sprintf("e%d-%d", i, j), Time: h0.Add(time.Second).UnixNano(), KeyHash: key, Status: 200, Units: 1}
			data = usage.AppendJSON(data, &ev)
		}
	}
	if r := st.Apply(ctx, []*rollup.APIBatch{rollup.Build("llm", [][]byte{data}, []int{0})}, h0); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	m := h0.UnixMilli()
	check := func(stage string, series func(aggregates.Ref) (map[int64]*rollup.Counters, error)) {
		t.Helper()
		for i, key := range keys {
			got, err := series(aggregates.Ref{Dim: aggregates.DimKey, Name: key})
			if err != nil {
				t.Fatalf("%s: key %.20q: %v", stage, key, err)
			}
			if c := got[m]; c == nil || c[rollup.FRequests] != int64(i+1) || c[rollup.FUnits] != int64(i+1) {
				t.Errorf("%s: key %.20q: %v, want %d requests and units", stage, key, c, i+1)
			}
		}
	}
	check("open minute", func(ref aggregates.Ref) (map[int64]*rollup.Counters, error) {
		sums, err := st.Sums(ctx, "llm", aggregates.DimKey, m, m)
		return map[int64]*rollup.Counters{m: sums[ref.Name]}, err
	})
	now := h0.Add(time.Hour + 2*time.Minute)
	if _, err := st.Close(ctx, "llm", rollup.Cutoff(now, 10*time.Second), now); err != nil {
		t.Fatal(err)
	}
	check("closed minute", func(ref aggregates.Ref) (map[int64]*rollup.Counters, error) { return st.Series(ctx, "llm", ref, m, m) })
	check("hour", func(ref aggregates.Ref) (map[int64]*rollup.Counters, error) {
		return st.HourSeries(ctx, "llm", ref, m, m)
	})
}
