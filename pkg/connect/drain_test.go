package connect

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// Drain delivers what a subscription holds, flushes, and returns with the
// connection closed; on a closed or nil connection it does nothing.
func TestDrainClosesAfterFlushing(t *testing.T) {
	t.Parallel()
	n := testutil.StartNATS(t)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 1)
	if _, err := nc.Subscribe("drain.test", func(*nats.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("drain.test", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Drain(ctx, nc); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Fatal("connection not closed after Drain")
	}
	select {
	case <-got:
	default:
		t.Fatal("the message published before Drain was not delivered")
	}
	if err := Drain(ctx, nc); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
	if err := Drain(ctx, nil); err != nil {
		t.Fatalf("nil connection: %v", err)
	}
}
