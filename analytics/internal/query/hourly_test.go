package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// TestQueriesChooseHourlyBuckets records usage in three minutes of two
// hours, closes them, then deletes the minute streams: what a query still
// finds was read from the hourly buckets. A series whose step is whole
// hours reads whole hours from them and the ends of its range from
// minutes; a shorter step reads minutes; a top query over more than
// HourlyAfter sums the whole hours it touches and says so.
func TestQueriesChooseHourlyBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testutil.StartRedis(t).Client(t)
	st := aggregates.New(rdb, time.Hour, 24*time.Hour).WithHourlyRetention(72 * time.Hour)
	h0 := time.UnixMilli(aggregates.HourOf(time.Now().Add(-30 * time.Hour).UnixMilli())).UTC()
	now := h0.Add(80 * time.Minute)
	// 3 requests at h0+10m, 5 at h0+40m, 7 at h0+65m (the next hour).
	var data [][]byte
	for i, m := range map[int]int{10: 3, 40: 5, 65: 7} {
		var b []byte
		for j := 0; j < m; j++ {
			ev := usage.Event{ID: fmt.Sprintf("e%d-%d", i, j), Time: h0.Add(time.Duration(i) * time.Minute).UnixNano(), KeyHash: "k1", Endpoint: "/x", Status: 200}
			b = usage.AppendJSON(b, &ev)
		}
		data = append(data, b)
	}
	if r := st.Apply(ctx, []*rollup.APIBatch{rollup.Build("orders", data, []int{0, 1, 2})}, h0); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if _, err := st.Close(ctx, "orders", rollup.Cutoff(now, 10*time.Second), now); err != nil {
		t.Fatal(err)
	}
	h := New(zerolog.Nop(), st, func() time.Time { return now })
	mux := http.NewServeMux()
	h.Register(mux)
	at := func(d time.Duration) string { return h0.Add(d).Format(time.RFC3339) }
	usageOf := func(q url.Values) int64 {
		t.Helper()
		var u usage.UsageResponse
		get(t, mux, "/v1/usage?"+q.Encode(), &u)
		return u.Totals.Requests
	}
	series := []struct {
		name     string
		q        url.Values
		before   int64 // with the minute streams
		hourOnly int64 // once they are deleted: what the hourly buckets gave
	}{
		{"whole hour, step 1h", url.Values{"api": {"orders"}, "from": {at(0)}, "to": {at(59 * time.Minute)}, "step": {"1h"}}, 8, 8},
		{"key, whole hour, step 1h", url.Values{"key": {"k1"}, "from": {at(0)}, "to": {at(59 * time.Minute)}, "step": {"1h"}}, 8, 8},
		{"endpoint, step 1d", url.Values{"api": {"orders"}, "endpoint": {"/x"}, "from": {at(0)}, "to": {at(59 * time.Minute)}, "step": {"1d"}}, 8, 8},
		{"edge minutes, step 1h", url.Values{"api": {"orders"}, "from": {at(30 * time.Minute)}, "to": {at(80 * time.Minute)}, "step": {"1h"}}, 12, 0},
		{"whole hour, step 5m", url.Values{"api": {"orders"}, "from": {at(0)}, "to": {at(59 * time.Minute)}, "step": {"5m"}}, 8, 0},
	}
	for _, tc := range series {
		if got := usageOf(tc.q); got != tc.before {
			t.Errorf("%s: %d requests, want %d", tc.name, got, tc.before)
		}
	}
	topOf := func(from string) usage.TopResponse {
		t.Helper()
		var tr usage.TopResponse
		get(t, mux, "/v1/usage/top?by=key&from="+url.QueryEscape(from)+"&to="+url.QueryEscape(now.Format(time.RFC3339)), &tr)
		return tr
	}
	long, short := topOf(now.Add(-HourlyAfter-time.Minute).Format(time.RFC3339)), topOf(at(50*time.Minute))
	if long.Granularity != "1h" || !long.From.Equal(h0.Add(-5*time.Hour)) || !long.To.Equal(h0.Add(2*time.Hour)) {
		t.Errorf("top over more than %v: granularity %q, from %v to %v; want 1h from %v to %v",
			HourlyAfter, long.Granularity, long.From, long.To, h0.Add(-5*time.Hour), h0.Add(2*time.Hour))
	}
	if short.Granularity != "1m" || len(short.Items) != 1 || short.Items[0].Requests != 7 {
		t.Errorf("top over 30m: %+v, want 7 requests by the minute", short)
	}

	// Minutes past their retention: only the hourly buckets are left.
	p := st.Layout().Prefix("orders")
	if err := rdb.Del(ctx, p+"s", p+"k:k1", p+"e:/x").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range series {
		if got := usageOf(tc.q); got != tc.hourOnly {
			t.Errorf("%s, minutes deleted: %d requests, want %d", tc.name, got, tc.hourOnly)
		}
	}
	if long = topOf(now.Add(-HourlyAfter - time.Minute).Format(time.RFC3339)); len(long.Items) != 1 || long.Items[0].Requests != 15 {
		t.Errorf("top over more than %v, minutes deleted: %+v, want k1 with 15 requests from the hours", HourlyAfter, long.Items)
	}
}

func get(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatal(err)
	}
}
