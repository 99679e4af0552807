package service

import (
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestExactlyK sends K events across APIs, keys and statuses and checks
// the query API shows exactly K by API, key and status, whatever happens
// to the workers and to NATS in between.
func TestExactlyK(t *testing.T) {
	t.Parallel()
	const k, perBatch = 1800, 40
	tests := []struct {
		name    string
		workers int
		// midway runs after half the batches are published.
		midway func(t *testing.T, e *env, svcs []*Service)
		// dup publishes each batch again under another message id.
		dup bool
	}{
		{name: "one worker", workers: 1},
		{name: "two workers", workers: 2},
		{name: "worker killed mid-run", workers: 2, midway: func(t *testing.T, e *env, svcs []*Service) {
			testutil.WaitFor(t, 10*time.Second, func() error {
				if metric(t, svcs[0].Addr(), "sluice_analytics_messages_total") == 0 {
					return errNotYet
				}
				return nil
			})
			svcs[0].Kill()
		}},
		{name: "NATS restarted mid-run", workers: 1, midway: func(t *testing.T, e *env, _ []*Service) {
			e.nats.Stop()
			e.nats.Start()
		}},
		{name: "duplicated publishes", workers: 2, dup: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var svcs []*Service
			for i := 0; i < tc.workers; i++ {
				svcs = append(svcs, e.start(t, e.config()))
			}
			batches, exp := gen(k, perBatch, time.Now())
			for i, b := range batches {
				if i == len(batches)/2 && tc.midway != nil {
					tc.midway(t, e, svcs)
				}
				e.publish(t, b.api, b.id, b.evs)
				if tc.dup {
					e.publish(t, b.api, b.id, b.evs)      // dropped by JetStream's window
					e.publish(t, b.api, b.id+"-r", b.evs) // stored again: the worker dedups
				}
			}
			live := svcs[len(svcs)-1]
			testutil.WaitFor(t, 20*time.Second, func() error { return checkExact(live.Addr(), exp) })
			if tc.dup {
				var dups float64
				testutil.WaitFor(t, 10*time.Second, func() error {
					dups = 0
					for _, s := range svcs {
						dups += metric(t, s.Addr(), "sluice_analytics_duplicates_total")
					}
					if dups != k {
						return errNotYet
					}
					return nil
				})
			}
		})
	}
}
