// Package service wires one analytics worker: Redis store, JetStream
// consumer, query API, dashboard, health, readiness and metrics on one
// HTTP listener.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/dashboard"
	"github.com/sluicegw/sluice/analytics/internal/query"
	"github.com/sluicegw/sluice/analytics/internal/settings"
	"github.com/sluicegw/sluice/analytics/internal/worker"
	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/connect"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// Service is a running analytics worker.
type Service struct {
	log    zerolog.Logger
	cfg    settings.Config
	reg    *prometheus.Registry
	rdb    redis.UniversalClient
	nc     *nats.Conn
	worker *worker.Worker
	srv    *http.Server
	ln     net.Listener
	now    func() time.Time
	tokens *tokens.Source // nil: auth.disabled
	denied prometheus.Counter
	// tracing traces the worker's apply step (nil: off).
	tracing *tracing.Provider
}

// Option changes a Service built by New.
type Option func(*Service)

// WithClock sets the clock of the worker and the query API (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New builds the service from a validated configuration.
func New(cfg settings.Config, log zerolog.Logger, opts ...Option) *Service {
	s := &Service{log: log, cfg: cfg, reg: prometheus.NewRegistry(), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start connects to Redis and NATS, starts consuming and listens. Neither
// needs to be reachable yet: the worker sets itself up once they are, and
// /ready tells when it consumes (see ready).
func (s *Service) Start(ctx context.Context) error {
	c := s.cfg
	tp, err := tracing.New(ctx, c.Tracing, tracing.Identity{Service: "sluice-analytics", Version: buildinfo.Get().Version}, s.log)
	if err != nil {
		return err
	}
	s.tracing = tp
	rdb, err := c.Redis.Client(s.log)
	if err != nil {
		return err
	}
	s.rdb = rdb
	st := aggregates.NewIn(aggregates.NewLayout(c.Redis.Layout()), s.rdb, c.Aggregation.DedupTTL, c.Aggregation.Retention).
		WithHourlyRetention(c.Aggregation.HourlyRetention).WithKeyMinuteMin(c.Aggregation.KeyMinuteMinRequests)
	// NATS need not answer yet: the client keeps trying, and the worker
	// sets its stream and consumer up once it does (/ready tells when).
	nc, err := c.NATS.Connect("sluice-analytics", s.log)
	if err != nil {
		return err
	}
	s.nc = nc
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	s.worker, err = worker.New(s.log, nc, st, worker.Options{
		Names: c.NATS.Names(), Durable: c.NATS.Durable, AckWait: c.NATS.AckWait, MaxAckPending: c.NATS.MaxAckPending,
		FetchBatch: c.NATS.FetchBatch, FetchWait: c.NATS.FetchWait,
		Stream: bus.StreamOptions{MaxAge: c.UsageStream.MaxAge, MaxBytes: c.UsageStream.MaxBytes,
			Replicas: c.UsageStream.Replicas, DedupWindow: c.UsageStream.DedupWindow},
		Grace: c.Aggregation.Grace, CloseInterval: c.Aggregation.CloseInterval,
		RedisTimeout: c.Redis.Timeout, Now: s.now, Tracing: tp,
	}, s.reg)
	if err != nil {
		return err
	}
	if err := s.worker.Start(ctx); err != nil {
		return err
	}
	if err := s.startAuth(); err != nil {
		return err
	}
	api := http.NewServeMux()
	query.New(s.log, st, s.now).Register(api)
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.requireToken(api))
	dashboard.Register(mux)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /ready", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", c.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("http server")
		}
	}()
	s.log.Info().Str("listen", ln.Addr().String()).Msg("analytics worker started")
	return nil
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// ready is /ready: the worker is set up and Redis and NATS both answer. A
// worker needs both to do any of its work (record events, close minutes,
// answer queries), so unlike a gateway it is not ready without them; the
// events wait in JetStream meanwhile.
func (s *Service) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	var problems []string
	if !s.worker.Ready() {
		problems = append(problems, "worker: usage consumer not set up yet")
	}
	if err := store.Ping(ctx, s.rdb); err != nil {
		problems = append(problems, "redis: "+err.Error())
	}
	if !s.nc.IsConnected() {
		problems = append(problems, "nats: not connected")
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			_, _ = w.Write([]byte(p + "\n"))
		}
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Shutdown stops the HTTP server, lets the batch in hand finish and closes
// the connections. It releases what a failed Start built, too
// (pkg/lifecycle runs it after one).
func (s *Service) Shutdown(ctx context.Context) error {
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.Shutdown(ctx))
	}
	if s.tokens != nil {
		errs = append(errs, s.tokens.Close(ctx))
	}
	if s.worker != nil {
		errs = append(errs, s.worker.Shutdown(ctx))
	}
	if s.nc != nil {
		errs = append(errs, connect.Drain(ctx, s.nc))
		s.nc = nil
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
		s.rdb = nil
	}
	errs = append(errs, s.tracing.Shutdown(ctx))
	return errors.Join(errs...)
}

// Kill stops the service abruptly, as a crash would: the connection to NATS
// is closed without acknowledging the batch in hand.
func (s *Service) Kill() {
	if s.nc != nil {
		s.nc.Close()
	}
	if s.srv != nil {
		_ = s.srv.Close()
	}
	if s.worker != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.worker.Shutdown(ctx)
		cancel()
	}
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
}
