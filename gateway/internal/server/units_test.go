package server

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// costUpstream answers every request with a random cost of 1-2000 in
// X-Cost, and sums the costs it handed out: the units the gateway let
// through.
func costUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var sum atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := 1 + rand.Int64N(2000)
		sum.Add(c)
		w.Header().Set("X-Cost", strconv.FormatInt(c, 10))
		w.WriteHeader(200)
	}))
	t.Cleanup(s.Close)
	return s, &sum
}

// TestReserveThenSettleAcrossNodes: 50 concurrent clients over three
// nodes against 100,000 units a minute, each request costing 1-2000 units
// that only the response tells. With a reservation of 2000 (an upper bound
// of every cost), the units served never exceed what the limit allows in
// the time the test took (the burst plus the refill since the first
// request). Beside it, check-then-debit (reserve 1: admit while anything
// is left, count the cost after) overspends, by the amount logged.
func TestReserveThenSettleAcrossNodes(t *testing.T) {
	t.Parallel()
	const rate, per, clients, each = 100000, time.Minute, 50, 8
	for _, mode := range []struct {
		name    string
		reserve int64
	}{{"reserve_bound", 2000}, {"check_then_debit", 1}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			c := newExactCluster(t)
			up, served := costUpstream(t)
			a := keyless("a", "/a", up.URL)
			a.OnStoreError = model.StoreErrorClosed
			a.RateLimit = &model.Limit{Rate: rate, Per: model.Duration(per), Units: &model.Units{
				From: model.UnitsResponseHeader, Header: "X-Cost", Reserve: mode.reserve}}
			c.put(a)
			nodes := []*node{c.node(), c.node(), c.node()}
			var ok, limited atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < each; i++ {
						switch r := do(t, "GET", nodes[(w+i)%3].url+"/a/x"); r.status {
						case 200:
							ok.Add(1)
						case 429:
							limited.Add(1)
						default:
							t.Errorf("status %d: %s", r.status, r.body)
						}
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			budget := rate + int64(float64(rate)*elapsed.Seconds()/per.Seconds())
			got := served.Load()
			t.Logf("%s: %d admitted, %d refused, %d units served, budget %d over %v", mode.name, ok.Load(), limited.Load(), got, budget, elapsed)
			if limited.Load() == 0 {
				t.Fatalf("the budget was never exhausted: the test shows nothing")
			}
			if mode.reserve >= 2000 {
				if got > budget {
					t.Fatalf("served %d units, over the budget %d", got, budget)
				}
				// what a request did not use is given back: without that, at
				// most budget/2000 (about 51) would be admitted
				if ok.Load() <= budget/mode.reserve+10 {
					t.Fatalf("admitted %d: unused reservations were not given back", ok.Load())
				}
				return
			}
			t.Logf("check-then-debit overspent %d units (%.1f%% of the budget)", max(got-budget, 0), 100*float64(max(got-budget, 0))/float64(budget))
		})
	}
}

func TestUnitCostsFromRequest(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	a := keyless("a", "/a", up.URL)
	a.RateLimit = &model.Limit{Rate: 100, Per: model.Duration(time.Hour), Units: &model.Units{From: model.UnitsRequestHeader, Header: "X-Cost", Max: 60}}
	b := keyless("b", "/b", up.URL)
	b.RateLimit = &model.Limit{Rate: 10, Per: model.Duration(time.Hour), Units: &model.Units{From: model.UnitsFixed, Cost: 4}}
	c.put(a, b)
	n := c.node()
	for _, tc := range []struct {
		cost string
		want int
		code string
	}{{"", 400, "bad_cost"}, {"abc", 400, "bad_cost"}, {"61", 400, "bad_cost"}, {"0", 400, "bad_cost"}, {"-3", 400, "bad_cost"},
		{"60", 200, ""}, {"41", 429, "rate_limited"}, {"40", 200, ""}, {"1", 429, "rate_limited"}} {
		r := do(t, "GET", n.url+"/a/x", "X-Cost", tc.cost)
		if r.status != tc.want || r.code != tc.code {
			t.Fatalf("cost %q: %d %s, want %d %s", tc.cost, r.status, r.body, tc.want, tc.code)
		}
	}
	r := do(t, "GET", n.url+"/a/x", "X-Cost", "abc")
	if r.status != 400 || !containsAll(r.body, `X-Cost`, `1 to 60`) {
		t.Fatalf("error names neither the header nor the bound: %s", r.body)
	}
	for i, want := range []int{200, 200, 429} { // 4 + 4 of 10, then 4 more does not fit
		r := do(t, "GET", n.url+"/b/x")
		if r.status != want {
			t.Fatalf("fixed cost request %d: %d", i, r.status)
		}
		if want == 200 && r.header.Get("RateLimit") == "" {
			t.Fatalf("no RateLimit header")
		}
	}
	evs := n.events.all()
	var units []int64
	for _, e := range evs {
		if e.API == "b" {
			units = append(units, e.Units)
		}
	}
	if len(units) != 3 || units[0] != 4 || units[1] != 4 || units[2] != 0 {
		t.Fatalf("usage units %v, want [4 4 0]", units)
	}
}

// TestFailedUpstreamGivesReservationBack: a request whose upstream does
// not answer gives its whole reservation back.
func TestFailedUpstreamGivesReservationBack(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	// an upstream that drops every connection without answering (kept
	// listening, so no other test's server can take its port)
	down := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	t.Cleanup(down.Close)
	a := keyless("a", "/a", down.URL)
	a.RateLimit = &model.Limit{Rate: 100, Per: model.Duration(time.Hour), Units: &model.Units{From: model.UnitsResponseHeader, Header: "X-Cost", Reserve: 60}}
	c.put(a)
	n := c.node()
	for i := 0; i < 4; i++ { // one reservation of 60 fits in 100; a kept one would refuse the second
		if r := do(t, "GET", n.url+"/a/x"); r.status != 502 {
			t.Fatalf("request %d: %d %s, want 502 (reservation given back)", i, r.status, r.body)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		found := false
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestJSONCost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, path string
		want       int64
		ok         bool
	}{
		{`{"usage":{"total_tokens":1234}}`, "usage.total_tokens", 1234, true},
		{`{"id":"x","choices":[{"a":{"b":1}}],"usage":{"prompt":3,"total_tokens":17.0}}`, "usage.total_tokens", 17, true},
		{`{"usage":{"total_tokens":"12"}}`, "usage.total_tokens", 0, false},
		{`{"usage":{"total_tokens":-1}}`, "usage.total_tokens", 0, false},
		{`{"usage":{"total_tokens":1.5}}`, "usage.total_tokens", 0, false},
		{`{"usage":[1,2]}`, "usage.total_tokens", 0, false},
		{`{"usage":{}}`, "usage.total_tokens", 0, false},
		{`not json`, "usage.total_tokens", 0, false},
		{`{"usage":{"total_tokens":5}`, "usage.total_tokens", 5, true},
		{`{"n":7}`, "n", 7, true},
	} {
		t.Run(tc.path+" "+tc.body, func(t *testing.T) {
			t.Parallel()
			got, ok := jsonCost([]byte(tc.body), tc.path)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("%d %v, want %d %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzJSONCost: jsonCost never panics, and on a document encoding/json
// reads it finds the same integer encoding/json finds at the path.
func FuzzJSONCost(f *testing.F) {
	f.Add(`{"usage":{"total_tokens":1234}}`, "usage.total_tokens")
	f.Add(`{"a":[{"b":{}}],"usage":{"total_tokens":17.0,"x":null}}`, "usage.total_tokens")
	f.Add(`{"n":-1}`, "n")
	f.Add(`[1,2]`, "n")
	f.Fuzz(func(t *testing.T, body, path string) {
		if path == "" || strings.Contains(path, "..") || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") {
			return
		}
		n, ok := jsonCost([]byte(body), path)
		if ok && n < 0 {
			t.Fatalf("negative cost %d", n)
		}
		var doc any
		if !ok || json.Unmarshal([]byte(body), &doc) != nil {
			return
		}
		v := doc
		for _, p := range strings.Split(path, ".") {
			m, isObj := v.(map[string]any)
			if !isObj {
				t.Fatalf("cost %d found where %q is not an object path in %s", n, path, body)
			}
			v = m[p]
		}
		if f, isNum := v.(float64); !isNum || int64(f) != n {
			// duplicate keys: encoding/json keeps the last, jsonCost the first
			if !strings.Contains(body, `"`+path[strings.LastIndexByte(path, '.')+1:]+`"`) || strings.Count(body, `"`+path[strings.LastIndexByte(path, '.')+1:]+`"`) < 2 {
				t.Fatalf("cost %d, encoding/json finds %v at %q in %s", n, v, path, body)
			}
		}
	})
}
