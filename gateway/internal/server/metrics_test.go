package server

import (
	"testing"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicegw/sluice/pkg/model"
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
