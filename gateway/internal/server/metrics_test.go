package server

import (
	"context"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestRequestMetrics: upstream errors are counted by API and cause, the
// upstream call is timed, and authentication failures are counted by API
// and error code.
func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	keyed := keyless("keyed", "/keyed", echoUpstream(t).URL)
	keyed.Auth.Mode = model.AuthAPIKey
	c.put(keyless("down", "/down", "http://127.0.0.1:"+itoa(testutil.FreePort(t))), keyed)
	n := c.node()
	if r := do(t, "GET", n.url+"/down/x"); r.status != 502 {
		t.Fatalf("status %d, want 502", r.status)
	}
	do(t, "GET", n.url+"/keyed/x")
	do(t, "GET", n.url+"/keyed/x", "X-API-Key", "not-a-key-of-any-kind")
	m := n.srv.m
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"connect errors", promtest.ToFloat64(m.upErrors.WithLabelValues("down", "connect")), 1},
		{"timeouts", promtest.ToFloat64(m.upErrors.WithLabelValues("down", "timeout")), 0},
		{"missing key", promtest.ToFloat64(m.authFailures.WithLabelValues("keyed", "missing_key")), 1},
		{"invalid key", promtest.ToFloat64(m.authFailures.WithLabelValues("keyed", "invalid_key")), 1},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// Deleting an API releases what the node kept for it: its metric series
// (requests, durations, upstream errors, auth failures, limit decisions)
// and the limiter's per-API state; the other APIs' series stay.
func TestDeletedAPIReleased(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t).URL
	gone := keyless("gone", "/gone", up)
	gone.RateLimit = &model.Limit{Rate: 1000, Per: model.Duration(time.Second)}
	gone.Auth.Mode = model.AuthAPIKey
	kept := keyless("kept", "/kept", up)
	c.put(gone, kept)
	n := c.node()
	do(t, "GET", n.url+"/gone/x")
	do(t, "GET", n.url+"/kept/x")
	series := func(api string) int {
		t.Helper()
		mfs, err := n.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "api" && l.GetValue() == api {
						count++
					}
				}
			}
		}
		return count
	}
	if series("gone") == 0 || series("kept") == 0 {
		t.Fatalf("series before the delete: gone %d, kept %d", series("gone"), series("kept"))
	}
	if _, err := storetest.Delete(context.Background(), c.store, store.KindAPI, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := n.state.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if k := series("gone"); k != 0 {
		t.Fatalf("%d series of the deleted API left", k)
	}
	if series("kept") == 0 {
		t.Fatal("the remaining API's series were dropped")
	}
}
