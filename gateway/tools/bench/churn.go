package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
)

// churnRate is the config changes per second of the churn scenario.
const churnRate = 100

// ChurnResult says what the config churn did during a scenario and whether
// the gateway applied it.
type ChurnResult struct {
	Rate    float64 `json:"target_changes_per_second"`
	Changes int64   `json:"changes"`
	Errors  int64   `json:"errors"`
	// Achieved is Changes over the time the churn ran.
	Achieved float64 `json:"achieved_changes_per_second"`
	// StoreBefore/After are the store's config version around the churn;
	// NodeBefore/After the gateway's sluice_config_version.
	StoreBefore int64 `json:"store_version_before"`
	StoreAfter  int64 `json:"store_version_after"`
	NodeBefore  int64 `json:"node_version_before"`
	NodeAfter   int64 `json:"node_version_after"`
	// CatchUpMs is how long after the last change the node reported the
	// store's version; -1 when it did not within the deadline.
	CatchUpMs float64 `json:"catch_up_ms"`
	LastError string  `json:"last_error,omitempty"`
}

// churner makes config changes at a constant rate the way the syncer does:
// Store.Apply, then the version read back from the changelog and announced
// on sluice.sync.<kind> (the default namespace). It alternates between re-putting the churn API
// (new name) and the churn policy (new rate): each a real change that bumps
// the version, touching nothing a benchmark request uses.
type churner struct {
	st       *store.Store
	nc       *nats.Conn
	upstream string
	rate     float64
	next     int // version counter of the churn objects, across scenarios
	res      ChurnResult
	start    time.Time
	stopped  time.Time
}

// change makes change number i.
func (c *churner) change(ctx context.Context, i int) error {
	var v int64
	var err error
	if i%2 == 0 {
		v, err = storetest.PutAPI(ctx, c.st, churnAPI(c.upstream, i))
	} else {
		v, err = storetest.PutPolicy(ctx, c.st, churnPolicy(i))
	}
	if err != nil {
		return err
	}
	vs, err := c.st.ChangesSince(ctx, v-1, 1)
	if err != nil {
		return err
	}
	if len(vs) == 0 || vs[0].Version != v {
		return fmt.Errorf("version %d not in the changelog", v)
	}
	msg := bus.NewSyncMessage(vs[0])
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	return c.nc.Publish(bus.Names{}.SyncSubject(msg.Kind()), data)
}

// run makes changes on schedule until ctx ends. A change that falls behind
// schedule is made at once; none is skipped.
func (c *churner) run(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / c.rate)
	c.start = time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
			c.stopped = time.Now()
			return
		case <-timer.C:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.change(cctx, c.next)
		cancel()
		c.next++
		if err != nil {
			if ctx.Err() != nil {
				c.stopped = time.Now()
				return
			}
			c.res.Errors++
			c.res.LastError = err.Error()
		} else {
			c.res.Changes++
		}
		timer.Reset(time.Until(c.start.Add(time.Duration(k+1) * interval)))
	}
}

// startChurn starts the churn and returns the function that stops it;
// checkApplied then says whether the node applied every change.
func (r *run) startChurn(ctx context.Context) func() *ChurnResult {
	c := r.churn
	c.res = ChurnResult{Rate: c.rate}
	c.res.StoreBefore, _ = c.st.Version(ctx)
	c.res.NodeBefore, _ = r.gatewayConfigVersion()
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.run(cctx) }()
	return func() *ChurnResult {
		cancel()
		wg.Wait()
		res := c.res
		if d := c.stopped.Sub(c.start).Seconds(); d > 0 {
			res.Achieved = float64(res.Changes) / d
		}
		res.StoreAfter, _ = c.st.Version(ctx)
		return &res
	}
}

// checkApplied polls the gateway's sluice_config_version until it reaches
// the store's version after the churn (at most 10s) and records how long
// after the last change that was (an upper bound: the scrape's own time and
// the poll interval count in it).
func (r *run) checkApplied(ctx context.Context, res *ChurnResult) {
	res.CatchUpMs = -1
	err := poll(ctx, 10*time.Second, func() error {
		v, err := r.gatewayConfigVersion()
		res.NodeAfter = v
		if err != nil {
			return err
		}
		if v < res.StoreAfter {
			return fmt.Errorf("node at version %d, store at %d", v, res.StoreAfter)
		}
		return nil
	})
	if err == nil {
		res.CatchUpMs = ms(time.Since(r.churn.stopped))
	}
}
