// Package apitest runs the real admin API in process, over real Redis and
// NATS, for the tests of the API itself and of its clients.
package apitest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/syncer/internal/api"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
	"github.com/sluicegw/sluice/syncer/internal/publish"
)

// Syncer is one admin API served by an httptest server.
type Syncer struct {
	URL   string
	API   *api.Server
	Store *store.Store
	NC    *nats.Conn
	Nodes *nodes.Registry
}

// Start serves the admin API over the given Redis and NATS (several syncers
// may share them) with the admin token, counting nodes live for nodeTTL. It
// is stopped when the test ends.
func Start(t testing.TB, r *testutil.Redis, n *testutil.NATS, token string, nodeTTL time.Duration) *Syncer {
	t.Helper()
	return StartIn(t, Env{}, r, n, api.Options{AdminToken: token}, nodeTTL)
}

// StartTokens is Start with the named tokens of src (see pkg/tokens).
func StartTokens(t testing.TB, r *testutil.Redis, n *testutil.NATS, src *tokens.Source, nodeTTL time.Duration) *Syncer {
	t.Helper()
	return StartIn(t, Env{}, r, n, api.Options{Tokens: src}, nodeTTL)
}

// Env is an environment's Redis key layout and NATS names (the zero Env:
// the default namespace).
type Env struct {
	Layout store.Layout
	Names  bus.Names
}

// StartIn starts the admin API in the environment env with opts (its
// store, announcer, nodes, NATS, log and registry are filled in).
func StartIn(t testing.TB, env Env, r *testutil.Redis, n *testutil.NATS, opts api.Options, nodeTTL time.Duration) *Syncer {
	t.Helper()
	st := store.NewIn(env.Layout, r.Client(t), 0)
	nc := n.Conn(t)
	reg := prometheus.NewRegistry()
	log := zerolog.Nop()
	pub, err := publish.New(nc, env.Names, log, reg, opts.Tracing)
	if err != nil {
		t.Fatal(err)
	}
	nr, err := nodes.New(nc, env.Names, nodeTTL, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := nr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nr.Shutdown(context.Background()) })
	opts.Store, opts.Announcer, opts.Nodes, opts.NATS, opts.Log, opts.Registry = st, pub, nr, nc, log, reg
	srv, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &Syncer{URL: hs.URL, API: srv, Store: st, NC: nc, Nodes: nr}
}
