package follower

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/store"
)

// timedState records when each version was applied on a node.
type timedState struct {
	*state.State
	node    int
	applied chan<- appliedAt
}

type appliedAt struct {
	node    int
	version int64
	at      time.Time
}

func (s *timedState) Apply(ctx context.Context, v store.Version) error {
	if err := s.State.Apply(ctx, v); err != nil {
		return err
	}
	s.applied <- appliedAt{s.node, v.Version, time.Now()}
	return nil
}

func (s *timedState) Reload(ctx context.Context) error {
	if err := s.State.Reload(ctx); err != nil {
		return err
	}
	s.applied <- appliedAt{s.node, s.Version(), time.Now()}
	return nil
}

// BenchmarkPropagation measures the time from the admin API's 2xx (a real
// sluice-syncer process) to the moment every one of N followers has applied
// the change to its state, over 200 policy changes.
//
//	go test -run '^$' -bench Propagation -benchtime 1x ./internal/sync/
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { benchPropagation(b, n, 200) })
	}
}

func benchPropagation(b *testing.B, nodes, changes int) {
	b.ReportAllocs()
	c := newCluster(b, 0)
	s := c.startSyncer()
	s.do(201, "POST", "/v1/apis", `{"id":"a","listen_path":"/a/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"api_key"}}`)
	s.do(201, "POST", "/v1/policies", `{"id":"gold","access":[{"api":"a"}],"rate_limit":{"rate":1,"per":"1s"}}`)
	applied := make(chan appliedAt, 64*nodes)
	var followers []*node
	for i := range nodes {
		n := c.startNodeWith(fmt.Sprintf("bench%d", i), Options{CheckInterval: time.Hour}, func(s *state.State) State {
			return &timedState{State: s, node: i, applied: applied}
		})
		followers = append(followers, n)
	}
	c.converge(followers...)
	var fromOK, fromReq []time.Duration
	b.ResetTimer()
	for range b.N {
		for i := range changes {
			sent := time.Now()
			v, _ := s.do(200, "PUT", "/v1/policies/gold", fmt.Sprintf(`{"access":[{"api":"a"}],"rate_limit":{"rate":%d,"per":"1s"}}`, i+2))
			ok := time.Now()
			last := waitApplied(b, applied, nodes, v)
			fromOK = append(fromOK, max(0, last.Sub(ok)))
			fromReq = append(fromReq, last.Sub(sent))
		}
	}
	b.StopTimer()
	b.ReportMetric(ms(pct(fromOK, 50)), "p50_ms")
	b.ReportMetric(ms(pct(fromOK, 99)), "p99_ms")
	b.ReportMetric(ms(pct(fromReq, 50)), "p50_from_request_ms")
	b.ReportMetric(ms(pct(fromReq, 99)), "p99_from_request_ms")
}

// waitApplied returns when every node has applied version v, and the time
// the last one did.
func waitApplied(b *testing.B, applied <-chan appliedAt, nodes int, v int64) time.Time {
	seen := map[int]bool{}
	var last time.Time
	timeout := time.After(10 * time.Second)
	for len(seen) < nodes {
		select {
		case a := <-applied:
			if a.version >= v && !seen[a.node] {
				seen[a.node] = true
				if a.at.After(last) {
					last = a.at
				}
			}
		case <-timeout:
			b.Fatalf("version %d applied on %d of %d nodes after 10s", v, len(seen), nodes)
		}
	}
	return last
}

func pct(d []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPropagationLargeApply: one atomic POST /v1/apply of 1,000 APIs
// and 1,000 policies (one config version), from the request to every one of
// 3 nodes having applied it (each node reads the changed objects from
// Redis). Every round moves every API to another listen path and changes
// every policy, so each apply changes 2,000 objects.
//
//	go test -run '^$' -bench PropagationLargeApply -benchtime 3x ./internal/sync/
func BenchmarkPropagationLargeApply(b *testing.B) {
	const nodes, objects = 3, 1000
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
		sb.WriteString(`]}`)
		return sb.String()
	}
	var total []time.Duration
	round := 0
	b.ResetTimer()
	for range b.N {
		round++
		req := body(round)
		sent := time.Now()
		_, out := s.do(200, "POST", "/v1/apply", req)
		var res struct {
			Version int64 `json:"version"`
		}
		if err := json.Unmarshal(out, &res); err != nil || res.Version == 0 {
			b.Fatalf("apply answered %s (%v)", out, err)
		}
		total = append(total, waitApplied(b, applied, nodes, res.Version).Sub(sent))
	}
	b.StopTimer()
	b.ReportMetric(ms(pct(total, 50)), "p50_ms")
	b.ReportMetric(ms(pct(total, 100)), "max_ms")
}
