// Package ops is the gateway's operations listener, separate from traffic:
// /health (alive; 200 while the process serves, with the state of each
// watched dependency), /ready (able to serve traffic: the node's own
// readiness check) and /metrics (Prometheus, from the node's own registry).
//
// Dependencies (Watch) are probed in the background every ProbeInterval;
// their state shows in /health and in sluice_dependency_up, never in
// /ready: whether a node can serve without them is the caller's decision.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check reports why the node (or a dependency) is not ready, or nil.
type Check func(ctx context.Context) error

// ProbeInterval is how often watched dependencies are probed; each probe
// is bounded by ProbeTimeout.
const (
	ProbeInterval = time.Second
	ProbeTimeout  = 500 * time.Millisecond
)

// Server is the operations listener.
type Server struct {
	mux    *http.ServeMux
	addr   string
	ready  Check
	log    zerolog.Logger
	srv    *http.Server
	ln     net.Listener
	served chan struct{}

	up       *prometheus.GaugeVec
	deps     []dependency
	mu       sync.Mutex // guards states
	states   map[string]string
	stop     chan struct{}
	probedWG sync.WaitGroup
}

type dependency struct {
	name  string
	check Check
}

// Registry registers the node's metrics and gathers them for /metrics.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// New returns the listener for addr; ready decides /ready, reg serves
// /metrics and holds sluice_dependency_up.
func New(addr string, ready Check, reg Registry, log zerolog.Logger) *Server {
	s := &Server{addr: addr, ready: ready, log: log.With().Str("component", "gateway.ops").Logger(),
		states: map[string]string{}, stop: make(chan struct{})}
	s.up = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_dependency_up",
		Help: "1 when the last probe of the dependency (redis, nats) succeeded, else 0.",
	}, []string{"dependency"})
	reg.MustRegister(s.up)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /ready", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil}))
	s.mux = mux
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Watch adds a dependency probed in the background (call before Start).
// Its state is "unknown" until the first probe, then "up" or "down: <why>".
func (s *Server) Watch(name string, check Check) {
	s.deps = append(s.deps, dependency{name: name, check: check})
	s.states[name] = "unknown"
	s.up.WithLabelValues(name).Set(0)
}

// probe checks every dependency once.
func (s *Server) probe() {
	for _, d := range s.deps {
		ctx, cancel := context.WithTimeout(context.Background(), ProbeTimeout)
		err := d.check(ctx)
		cancel()
		state, up := "up", 1.0
		if err != nil {
			state, up = "down: "+err.Error(), 0
		}
		s.up.WithLabelValues(d.name).Set(up)
		s.mu.Lock()
		s.states[d.name] = state
		s.mu.Unlock()
	}
}

func (s *Server) probeLoop() {
	defer s.probedWG.Done()
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for {
		s.probe()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// handleHealth answers 200 while the process serves, with the last known
// state of each dependency.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	deps := make(map[string]string, len(s.states))
	for k, v := range s.states {
		deps[k] = v
	}
	s.mu.Unlock()
	body := map[string]any{"status": "ok"}
	if len(deps) > 0 {
		body["dependencies"] = deps
	}
	writeJSON(w, http.StatusOK, body)
}

// EnableProfiling serves Go's pprof endpoints under /debug/pprof/. Call it
// before Start. The operations listener should not be reachable from
// outside the cluster; profiling is off unless configured.
func (s *Server) EnableProfiling() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"error": map[string]string{"code": "not_ready", "message": err.Error()},
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Start listens and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("ops: listen %s: %w", s.addr, err)
	}
	s.ln = ln
	s.served = make(chan struct{})
	if len(s.deps) > 0 {
		s.probedWG.Add(1)
		go s.probeLoop()
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("ops listener stopped")
		}
	}()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("serving operations")
	return nil
}

// Addr is the address listened on (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the listener and the probes.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.served
	close(s.stop)
	s.probedWG.Wait()
	s.ln = nil
	return err
}
