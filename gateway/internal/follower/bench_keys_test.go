package follower

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/model"
)

// BenchmarkPropagationLargeApplyWithKeys: the declarative apply of issue
// scale, 1,000 APIs, 1,000 policies and 10,000 keys, against a real
// sluice-syncer and 3 nodes. Each round moves every API to another listen
// path, changes every policy and rotates every key (a new hash), so each
// apply changes 12,000 objects in one config version. It reports, per
// round: plan_ms (POST /v1/plan of the whole set: decode, validate, read
// the stored state, diff; nothing written), apply_ms (POST /v1/apply: the
// same plus the one atomic store write and its announcement) and
// propagate_ms (from the apply request to the last of the 3 nodes having
// applied the new version).
//
//	go test -run '^$' -bench PropagationLargeApplyWithKeys -benchtime 3x ./internal/sync/
func BenchmarkPropagationLargeApplyWithKeys(b *testing.B) {
	const nodes, objects, keys = 3, 1000, 10000
	c := newCluster(b, 0)
	s := c.startSyncer()
	applied := make(chan appliedAt, 64*nodes)
	var followers []*node
	for i := range nodes {
		n := c.startNodeWith(fmt.Sprintf("bench%d", i), Options{CheckInterval: time.Hour}, func(s *state.State) State {
			return &timedState{State: s, node: i, applied: applied}
		})
		followers = append(followers, n)
	}
	c.converge(followers...)
	body := func(round int) string {
		var sb strings.Builder
		sb.WriteString(`{"prune":true,"apis":[`)
		for i := range objects {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"id":"a%d","listen_path":"/r%d/a%d/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"api_key"}}`, i, round, i)
		}
		sb.WriteString(`],"policies":[`)
		for i := range objects {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"id":"p%d","access":[{"api":"a%d"}],"rate_limit":{"rate":%d,"per":"1s"}}`, i, i, round+1)
		}
		sb.WriteString(`],"keys":[`)
		for i := range keys {
			if i > 0 {
				sb.WriteByte(',')
			}
			hash := model.HashKey(fmt.Appendf(nil, "bench-key-%d-%d", round, i))
			fmt.Fprintf(&sb, `{"id":"k%d","policies":["p%d"],"tags":["bench"],"hash":"%s"}`, i, i%objects, hash)
		}
		sb.WriteString(`]}`)
		return sb.String()
	}
	// Round 0 creates the 12,000 objects; the timed rounds change them.
	_, out := s.do(200, "POST", "/v1/apply", body(0))
	var first struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(out, &first); err != nil || first.Version == 0 {
		b.Fatalf("first apply answered %.200s (%v)", out, err)
	}
	waitAppliedFor(b, applied, nodes, first.Version, 2*time.Minute)
	var plan, apply, total []time.Duration
	round := 0
	b.ResetTimer()
	for range b.N {
		round++
		req := body(round)
		start := time.Now()
		_, out := s.do(200, "POST", "/v1/plan", req)
		plan = append(plan, time.Since(start))
		var res struct {
			Version int64 `json:"version"`
			Plan    struct {
				Actions []json.RawMessage `json:"actions"`
			} `json:"plan"`
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res.Plan.Actions) != 2*objects+keys {
			b.Fatalf("plan of round %d: %d actions (%v)", round, len(res.Plan.Actions), err)
		}
		sent := time.Now()
		_, out = s.do(200, "POST", "/v1/apply", req)
		apply = append(apply, time.Since(sent))
		if err := json.Unmarshal(out, &res); err != nil || res.Version == 0 {
			b.Fatalf("apply answered %.200s (%v)", out, err)
		}
		total = append(total, waitAppliedFor(b, applied, nodes, res.Version, time.Minute).Sub(sent))
	}
	b.StopTimer()
	b.ReportMetric(ms(pct(plan, 50)), "plan_ms")
	b.ReportMetric(ms(pct(apply, 50)), "apply_ms")
	b.ReportMetric(ms(pct(total, 50)), "propagate_ms")
	b.ReportMetric(ms(pct(total, 100)), "max_propagate_ms")
}

// waitAppliedFor returns when every node has applied version v, and the
// time the last one did; it fails after timeout.
func waitAppliedFor(b *testing.B, applied <-chan appliedAt, nodes int, v int64, timeout time.Duration) time.Time {
	seen := map[int]bool{}
	var last time.Time
	deadline := time.After(timeout)
	for len(seen) < nodes {
		select {
		case a := <-applied:
			if a.version >= v && !seen[a.node] {
				seen[a.node] = true
				if a.at.After(last) {
					last = a.at
				}
			}
		case <-deadline:
			b.Fatalf("version %d applied on %d of %d nodes after %v", v, len(seen), nodes, timeout)
		}
	}
	return last
}
