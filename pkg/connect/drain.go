package connect

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// Drain drains nc (its subscriptions' pending messages are handled, its
// buffered publishes flushed) and waits until it is closed, or closes it
// when ctx ends first. It is how a service releases its NATS connection
// at shutdown.
func Drain(ctx context.Context, nc *nats.Conn) error {
	if nc == nil || nc.IsClosed() {
		return nil
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return nil // not connected: nothing could be flushed anyway
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !nc.IsClosed() {
		select {
		case <-ctx.Done():
			nc.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
