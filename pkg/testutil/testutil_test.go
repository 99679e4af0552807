package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRedisStopStartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := StartRedis(t)
	c := r.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded while stopped")
	}
	r.Start()
	WaitFor(t, 5*time.Second, func() error {
		v, err := c.Get(ctx, "k").Result()
		if err == nil && v != "v" {
			t.Fatalf("k = %q after restart", v)
		}
		return err
	})
}

func TestRedisPauseTimesOut(t *testing.T) {
	t.Parallel()
	r := StartRedis(t)
	c := r.Client(t)
	r.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := c.Ping(ctx).Err()
	cancel()
	if err == nil {
		t.Fatal("ping answered while paused")
	}
	r.Resume()
	WaitFor(t, 5*time.Second, func() error { return c.Ping(context.Background()).Err() })
}

func TestNATSRestartKeepsPortAndStreams(t *testing.T) {
	t.Parallel()
	n := StartNATS(t)
	url := n.URL()
	nc := n.Conn(t)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish("t.a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	WaitFor(t, 5*time.Second, func() error {
		if nc.IsConnected() {
			return context.DeadlineExceeded
		}
		return nil
	})
	n.Start()
	if n.URL() != url {
		t.Fatalf("URL changed across restart: %s -> %s", url, n.URL())
	}
	WaitFor(t, 10*time.Second, func() error {
		info, err := js.StreamInfo("T")
		if err != nil {
			return err
		}
		if info.State.Msgs != 1 {
			t.Fatalf("stream has %d messages after restart, want 1", info.State.Msgs)
		}
		return nil
	})
}
