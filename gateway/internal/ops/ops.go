// Package ops is the gateway's operations listener, separate from traffic:
// /health (alive), /ready (dependencies reachable and config loaded) and
// /metrics (Prometheus, from the node's own registry).
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check reports why the node is not ready, or nil.
type Check func(ctx context.Context) error

// Server is the operations listener.
type Server struct {
	mux    *http.ServeMux
	addr   string
	ready  Check
	log    zerolog.Logger
	srv    *http.Server
	ln     net.Listener
	served chan struct{}
}

// New returns the listener for addr; ready decides /ready and gather
// serves /metrics.
func New(addr string, ready Check, gather prometheus.Gatherer, log zerolog.Logger) *Server {
	s := &Server{addr: addr, ready: ready, log: log.With().Str("component", "gateway.ops").Logger()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{ErrorLog: nil}))
	s.mux = mux
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
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

// Shutdown stops the listener.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	<-s.served
	return err
}
