package service

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// A worker started while NATS is down waits for it (the connection is
// retried, nats.retry_on_failed_connect) and starts consuming once NATS is
// up.
func TestStartBeforeNATS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.nats.Stop()
	s := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	// No deadline, as in main: JetStream calls then use their own timeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- s.Start(ctx) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(sctx)
	})
	// Down for longer than JetStream's 5s API timeout, so the stream
	// declaration would fail had Start not waited for the connection.
	select {
	case err := <-started:
		t.Fatalf("Start returned %v with NATS down", err)
	case <-time.After(6 * time.Second):
	}
	e.nats.Start()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/ready", s.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/ready %d after NATS came up", resp.StatusCode)
	}
}
