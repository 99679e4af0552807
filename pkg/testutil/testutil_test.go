package testutil

import (
	"context"
	"net"
	"strconv"
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

// FreePort draws below the kernel's ephemeral range, where no bind(":0")
// or outgoing connection lands, and the port is free.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	t.Parallel()
	lo, ok := ephemeralLow()
	if !ok || lo <= minTestPort+1000 {
		t.Skip("no room below the ephemeral range here")
	}
	for range 20 {
		p := FreePort(t)
		if p < minTestPort || p >= lo {
			t.Fatalf("port %d outside [%d, %d)", p, minTestPort, lo)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d not free: %v", p, err)
		}
		_ = l.Close()
	}
}
