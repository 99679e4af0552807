package service

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestMetricsPassPromtool: the worker's /metrics, after it has processed
// events and answered queries, passes the checks of `promtool check metrics`.
func TestMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.start(t, e.config())
	batches, exp := gen(200, 50, time.Now())
	for _, b := range batches {
		e.publish(t, b.api, b.id, b.evs)
	}
	testutil.WaitFor(t, 20*time.Second, func() error { return checkExact(s.Addr(), exp) })
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	testutil.LintMetrics(t, string(body))
	testutil.CheckExported(t, string(body), filepath.Join("..", "..", "..", "deployments", "grafana", "exported", "analytics.txt"))
}
