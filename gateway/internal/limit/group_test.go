package limit

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// groupProfiles are the decisions TestGroupedMatchesSequential draws from:
// a few rules and quotas shared between profiles, periods long enough that
// nothing refills while the test runs (the grouped and the sequential runs
// see the same conditions).
func groupProfiles() [][2][]int {
	// rules: indexes into groupRules; quotas: into groupQuotas
	return [][2][]int{
		{{0}, nil},
		{{0, 1}, {0}},
		{{1, 2}, nil},
		{{2, 3}, {1}},
		{nil, {0, 1}},
		{{0, 3}, {1}},
	}
}

func groupRules() []Rule {
	shadow := rule("s", 10, 9000*time.Second, 0)
	shadow.Limit.Shadow = true
	// T: 430s, 600s, 900s, 190s; quota periods 3100s and 6100s: no two
	// limits reach the same reset (ties would be broken by microseconds).
	return []Rule{rule("a", 60, 25800*time.Second, 0), rule("b", 40, 24000*time.Second, 12), shadow,
		rule("c", 60, 11400*time.Second, 40)}
}

func groupQuotas() []QuotaRule {
	return []QuotaRule{quota("q1", 70, 3100*time.Second), quota("q2", 120, 6100*time.Second)}
}

func profileRequest(api string, p [2][]int) *Request {
	rs, qs := groupRules(), groupQuotas()
	req := &Request{APIID: api}
	for _, i := range p[0] {
		req.Rules = append(req.Rules, rs[i])
	}
	for _, i := range p[1] {
		req.Quotas = append(req.Quotas, qs[i])
	}
	return req
}

// decideBatch sends reqs as one script call, as the collector does when
// they are queued together, and returns their decisions.
func decideBatch(t *testing.T, l *Limiter, reqs []*Request) []Decision {
	t.Helper()
	ds := make([]Decision, len(reqs))
	b := newBatch(len(reqs), store.Layout{})
	for i, req := range reqs {
		cl := l.calls.Get().(*call)
		cl.req, cl.d = req, &ds[i]
		if l.takeLeases(l.collector(req.APIID), cl) != leasedPartly {
			t.Fatalf("decision %d not sent to Redis", i)
		}
		b.calls = append(b.calls, cl)
	}
	l.exec(b)
	for _, cl := range b.calls {
		<-cl.done
		l.putCall(cl)
	}
	return ds
}

// TestGroupedMatchesSequential runs the same random decisions (drawn from
// a few profiles, so batches hold groups of identical decisions) through
// grouped batches and one at a time, on real Redis, and compares every
// outcome, remaining, reset and retry-after.
func TestGroupedMatchesSequential(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	grouped := newLimiter(t, client(t, r), Options{Timeout: time.Second})
	single := newLimiter(t, client(t, r), Options{Timeout: time.Second, MaxBatch: 1})
	profiles := groupProfiles()
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds, perBatch = 8, 40
	var allowed, limited, shadowed int
	for round := 0; round < rounds; round++ {
		picks := make([]int, perBatch)
		var reqs []*Request
		for i := range picks {
			picks[i] = rng.IntN(len(profiles))
			reqs = append(reqs, profileRequest("grouped", profiles[picks[i]]))
		}
		before := grouped.Stats().ScriptGroups
		got := decideBatch(t, grouped, reqs)
		if groups := grouped.Stats().ScriptGroups - before; groups >= perBatch {
			t.Fatalf("round %d: %d groups for %d decisions: nothing grouped", round, groups, perBatch)
		}
		// The script takes groups in the order of their first decision:
		// decide one at a time in that order.
		var order []int
		seen := map[int]bool{}
		for _, p := range picks {
			if seen[p] {
				continue
			}
			seen[p] = true
			for i, q := range picks {
				if q == p {
					order = append(order, i)
				}
			}
		}
		for _, i := range order {
			want := check(single, profileRequest("single", profiles[picks[i]]))
			g := got[i]
			if g.Outcome != want.Outcome || g.Reason != want.Reason || g.Policy != want.Policy ||
				g.Remaining != want.Remaining || g.HasLimit != want.HasLimit || g.ShadowLimited != want.ShadowLimited ||
				g.Fallback || want.Fallback {
				t.Fatalf("round %d decision %d (profile %d): grouped %+v, sequential %+v", round, i, picks[i], g, want)
			}
			if !near(g.Reset, want.Reset) || !near(g.RetryAfter, want.RetryAfter) {
				t.Fatalf("round %d decision %d: reset %v retry %v grouped, %v %v sequential",
					round, i, g.Reset, g.RetryAfter, want.Reset, want.RetryAfter)
			}
			switch {
			case g.Outcome == Allowed:
				allowed++
			default:
				limited++
			}
			if g.ShadowLimited {
				shadowed++
			}
		}
	}
	if allowed == 0 || limited == 0 || shadowed == 0 {
		t.Fatalf("allowed %d, limited %d, shadow limited %d: the run does not exercise every case", allowed, limited, shadowed)
	}
	t.Logf("%d allowed, %d limited, %d shadow limited", allowed, limited, shadowed)
}

// near reports whether two durations of runs taken moments apart agree
// (a TAT's distance from now shrinks as time passes).
func near(a, b time.Duration) bool {
	d := a - b
	return d > -5*time.Second && d < 5*time.Second
}

// TestLargeBatch sends more numbers than check.lua unpacks at once: every
// decision is still decided against its own counters.
func TestLargeBatch(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{Timeout: time.Second})
	const ids, perID = 120, 3
	var reqs []*Request
	for i := 0; i < ids*perID; i++ {
		id := strconv.Itoa(i % ids)
		reqs = append(reqs, &Request{APIID: "a", Rules: []Rule{rule("k:"+id, 2, time.Hour, 0), rule("api", 1000, time.Hour, 0)},
			Quotas: []QuotaRule{quota("q:"+id, 100, time.Hour)}})
	}
	ds := decideBatch(t, l, reqs)
	for i, d := range ds {
		n := i / ids // the n-th decision of its identity
		switch {
		case n < 2 && (d.Outcome != Allowed || d.Policy != "k:"+strconv.Itoa(i%ids) || d.Remaining != int64(1-n)):
			t.Fatalf("decision %d: %+v, want allowed with %d left", i, d, 1-n)
		case n >= 2 && (d.Outcome != Limited || d.Reason != ReasonRate):
			t.Fatalf("decision %d: %+v, want limited by rate", i, d)
		}
	}
	if d := check(l, &Request{APIID: "a", Rules: []Rule{rule("api", 1000, time.Hour, 0)}}); d.Remaining != 1000-2*ids-1 {
		t.Fatalf("api rule remaining %d, want %d", d.Remaining, 1000-2*ids-1)
	}
}
