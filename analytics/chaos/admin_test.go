//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// churnPolicy is the policy the admin writer rewrites; no key holds it,
// so its changes do not touch the load.
const churnPolicy = "chaos-churn"

// adminWriter rewrites churnPolicy through the admin API in a loop, its
// rate limit i on write i, on one syncer until a write fails (no answer or
// not 2xx), then retries the same write on the other syncer.
type adminWriter struct {
	tp       *topology
	client   *http.Client
	inFlight atomic.Bool
	started  chan struct{} // closed on the first write in flight

	mu                 sync.Mutex
	acked, attempted   int64 // the last write acknowledged, the last sent
	lastFailedAt       int64 // the write that failed last
	failures, accepted int
	errs               []string
}

func newAdminWriter(tp *topology) *adminWriter {
	return &adminWriter{tp: tp, client: &http.Client{Timeout: 3 * time.Second}, started: make(chan struct{})}
}

// run writes every 20ms until ctx ends.
func (w *adminWriter) run(ctx context.Context) {
	cur := 0
	var once sync.Once
	for i := int64(1); ; {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		w.mu.Lock()
		w.attempted = i
		w.mu.Unlock()
		w.inFlight.Store(true)
		once.Do(func() { close(w.started) })
		err := w.put(ctx, w.tp.syncers[cur], i)
		w.inFlight.Store(false)
		w.mu.Lock()
		if err != nil {
			w.failures++
			w.lastFailedAt = i
			w.errs = append(w.errs, fmt.Sprintf("write %d via %s: %v", i, w.tp.syncers[cur].Name, err))
			cur = 1 - cur
		} else {
			w.accepted++
			w.acked = i
			i++
		}
		w.mu.Unlock()
	}
}

func (w *adminWriter) put(ctx context.Context, s *syncerProc, i int64) error {
	p := &model.Policy{ID: churnPolicy, Access: []model.AccessRight{{API: openAPI}},
		RateLimit: &model.Limit{Rate: i, Per: model.Duration(time.Second), Mode: model.LimitExact}}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+s.addr+"/v1/policies/"+churnPolicy, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e bytes.Buffer
		_, _ = e.ReadFrom(resp.Body)
		return fmt.Errorf("status %d: %s", resp.StatusCode, e.String())
	}
	return nil
}

// storedRate is churnPolicy's rate as syncer s serves it.
func storedRate(s *syncerProc) (int64, error) {
	data, err := get("http://" + s.addr + "/v1/policies/" + churnPolicy)
	if err != nil {
		return 0, err
	}
	var p model.Policy
	if err := json.Unmarshal(data, &p); err != nil {
		return 0, fmt.Errorf("policy %s: %w", churnPolicy, err)
	}
	if p.RateLimit == nil {
		return 0, fmt.Errorf("policy %s has no rate limit", churnPolicy)
	}
	return p.RateLimit.Rate, nil
}

// --- Syncer: kill -9 one while an admin write is in flight, restart it.

func killSyncerMidApply(t *testing.T, tp *topology, st *faultState) {
	w := newAdminWriter(tp)
	ctx, cancel := context.WithCancel(context.Background())
	st.syncWriter, st.cancelWriter, st.writerDone = w, cancel, make(chan struct{})
	go func() { defer close(st.writerDone); w.run(ctx) }()
	<-w.started
	// Wait for some writes, then for one in flight, and kill.
	testutil.WaitFor(t, 10*time.Second, func() error {
		w.mu.Lock()
		n := w.accepted
		w.mu.Unlock()
		if n < 10 || !w.inFlight.Load() {
			return fmt.Errorf("%d writes acknowledged", n)
		}
		return nil
	})
	s := tp.syncers[0]
	st.killed = s.Kill()
	st.note("killed %s (%s) with admin write %d in flight", s.Name, st.killed, w.attempted)
	hold(st.tm.fault)
}

func restartSyncer(t *testing.T, tp *topology, st *faultState) {
	s := tp.syncers[0]
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(t.Context(), "http://"+s.addr+"/ready", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// checkAdminWrites: the writer saw the dead syncer fail; the last write
// acknowledged is what both syncers serve (or the one after it, if that
// one failed with no answer after its apply); every gateway converges.
func checkAdminWrites(t *testing.T, tp *topology, st *faultState, r *result) {
	w := st.syncWriter
	st.cancelWriter()
	<-st.writerDone
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures == 0 {
		t.Errorf("no admin write failed: the syncer was not killed while in use")
	}
	st.note("%d admin writes acknowledged, %d failed (first: %v)", w.accepted, w.failures, first(w.errs))
	for _, s := range tp.syncers {
		got, err := storedRate(s)
		if err != nil {
			t.Fatal(err)
		}
		if got != w.acked && (got != w.acked+1 || w.lastFailedAt != w.acked+1) {
			t.Errorf("%s serves write %d; the last acknowledged was %d", s.Name, got, w.acked)
		}
	}
	start := time.Now()
	testutil.WaitFor(t, 30*time.Second, func() error {
		data, err := get("http://" + tp.syncers[1].addr + "/v1/status")
		if err != nil {
			return err
		}
		var s struct {
			Version   int64 `json:"config_version"`
			Live      int   `json:"nodes_live"`
			Converged int   `json:"nodes_converged"`
		}
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if s.Live != len(tp.gateways) || s.Converged != s.Live {
			return fmt.Errorf("version %d: %d of %d live gateways converged", s.Version, s.Converged, s.Live)
		}
		return nil
	})
	st.note("every gateway had the last version %v after the writes stopped", time.Since(start).Round(10*time.Millisecond))
}

func first(errs []string) string {
	if len(errs) == 0 {
		return "none"
	}
	return errs[0]
}
