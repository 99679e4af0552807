package service

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/analytics/internal/settings"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// A worker started while Redis and NATS are both down comes up (health
// 200, /ready 503), sets itself up once they come and then records events.
func TestStartsBeforeRedisAndNATS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.redis.Stop()
	e.nats.Stop()
	svc := e.start(t, e.config())
	get := func(path string) (int, string, error) {
		resp, err := get("http://" + svc.Addr() + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	expect := func(path string, status int, want string) {
		t.Helper()
		testutil.WaitFor(t, 15*time.Second, func() error {
			code, body, err := get(path)
			if err != nil || code != status || !strings.Contains(body, want) {
				return fmt.Errorf("GET %s = %d %q %v", path, code, body, err)
			}
			return nil
		})
	}
	expect("/health", 200, "ok")
	expect("/ready", 503, "worker: usage consumer not set up yet")

	e.redis.Start()
	e.nats.Start()
	expect("/ready", 200, "ready")
	e.publish(t, "orders", "m1", events(7, "s", time.Now()))
	testutil.WaitFor(t, 10*time.Second, func() error {
		var tot struct {
			Requests int `json:"requests"`
		}
		if err := getJSON(svc.Addr(), "/v1/usage/totals?api=orders", &tot); err != nil {
			return err
		}
		if tot.Requests != 7 {
			return fmt.Errorf("totals: %d requests, want 7", tot.Requests)
		}
		return nil
	})
}

// The workers own the usage stream: a worker brings an existing stream to
// its usage_stream settings.
func TestWorkerOwnsStreamSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // the stream exists, with the defaults
	cfg := e.config()
	cfg.UsageStream = settings.UsageStream{MaxAge: 3 * time.Hour, MaxBytes: 32 << 20, Replicas: 1, DedupWindow: 5 * time.Minute}
	cfg.Aggregation.DedupTTL = 3 * time.Hour // dedup records outlive the stream (config check)
	e.start(t, cfg)
	testutil.WaitFor(t, 10*time.Second, func() error {
		s, err := e.js.Stream(t.Context(), bus.Names{}.UsageStream())
		if err != nil {
			return err
		}
		c := s.CachedInfo().Config
		if c.MaxAge != 3*time.Hour || c.MaxBytes != 32<<20 || c.Replicas != 1 || c.Duplicates != 5*time.Minute {
			return fmt.Errorf("stream settings %v %d %d %v", c.MaxAge, c.MaxBytes, c.Replicas, c.Duplicates)
		}
		return nil
	})
}
