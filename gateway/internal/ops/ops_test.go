package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/testutil"
)

func start(t *testing.T, ready Check, profiling bool) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	s := New("127.0.0.1:0", ready, reg, zerolog.Nop())
	if profiling {
		s.EnableProfiling()
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + s.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	var notReady error = errors.New("redis: connection refused")
	base := start(t, func(context.Context) error { return notReady }, false)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/health", 200, `"ok"`},
		{"/ready", 503, `"code":"not_ready","message":"redis: connection refused"`},
		{"/metrics", 200, "sluice_test_total 3"},
		{"/debug/pprof/", 404, ""},
	}
	for _, tt := range tests {
		status, body := get(t, base+tt.path)
		if status != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, status, body, tt.status, tt.body)
		}
	}
}

func TestReadyAndProfiling(t *testing.T) {
	t.Parallel()
	base := start(t, func(context.Context) error { return nil }, true)
	if status, body := get(t, base+"/ready"); status != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/ready = %d %s", status, body)
	}
	if status, body := get(t, base+"/debug/pprof/"); status != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/ = %d", status)
	}
}

// A watched dependency shows in /health (still 200) and in
// sluice_dependency_up, and never in /ready.
func TestDependencies(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var redisDown atomic.Bool
	redisDown.Store(true)
	s := New("127.0.0.1:0", func(context.Context) error { return nil }, reg, zerolog.Nop())
	s.Watch("redis", func(context.Context) error {
		if redisDown.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	s.Watch("nats", func(context.Context) error { return nil })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	base := "http://" + s.Addr()
	expect := func(path string, status int, want ...string) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, func() error {
			got, body := get(t, base+path)
			if got != status {
				return fmt.Errorf("GET %s = %d %s", path, got, body)
			}
			for _, w := range want {
				if !strings.Contains(body, w) {
					return fmt.Errorf("GET %s = %s, want %q", path, body, w)
				}
			}
			return nil
		})
	}
	expect("/health", 200, `"redis":"down: connection refused"`, `"nats":"up"`)
	expect("/ready", 200, "ready")
	expect("/metrics", 200, `sluice_dependency_up{dependency="redis"} 0`, `sluice_dependency_up{dependency="nats"} 1`)
	redisDown.Store(false)
	expect("/health", 200, `"redis":"up"`)
	expect("/metrics", 200, `sluice_dependency_up{dependency="redis"} 1`)
}
