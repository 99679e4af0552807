// Package api is the syncer's admin REST API: APIs, policies, orgs and keys under
// /v1, node status, health and metrics.
//
// It is built on net/http rather than fasthttp: this is a control plane
// serving a few requests per second, where the standard library's method and
// wildcard routing (Go 1.22 patterns), http.MaxBytesReader and graceful
// Shutdown matter more than allocation counts.
//
// Every write goes through store.Apply (object, version bump and changelog
// entry in one Lua script: all or nothing), then the new version is
// announced on NATS. The response carries the new version in the
// Sluice-Config-Version header. Every read goes through the store's
// methods too (GetRaw, List, Exist, LoadState, ...): this package never
// names a Redis key.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

//go:embed openapi.json
var openAPIDoc []byte

// Announcer publishes a config version after it was written.
type Announcer interface {
	Announce(ctx context.Context, st *store.Store, version int64)
}

// Options are the dependencies of the admin API.
type Options struct {
	Store     *store.Store
	Announcer Announcer
	Nodes     *nodes.Registry
	// NATS is checked by /ready.
	NATS *nats.Conn
	// Tokens are the named tokens and their roles (see roles.go); when nil,
	// AdminToken alone is accepted, as an admin named AdminTokenName.
	Tokens *tokens.Source
	// AdminToken is an admin token; with no Tokens and no AdminToken every
	// /v1 route is open (only allowed by main on loopback with
	// --insecure-dev).
	AdminToken string
	Log        zerolog.Logger
	// Registry registers the API's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Tracing traces every call (tracing.go); nil: off.
	Tracing *tracing.Provider
}

// Server is the admin API.
type Server struct {
	opts     Options
	log      zerolog.Logger
	mux      *http.ServeMux
	routes   []route
	requests *prometheus.CounterVec
	http     *http.Server
	now      func() time.Time
	tokens   *tokens.Source // nil: no authentication (--insecure-dev)
	denied   *prometheus.CounterVec
}

type route struct {
	method, path string
	public       bool
	// allow is the roles that may call the route (admin always may).
	allow  roles
	handle func(w http.ResponseWriter, r *http.Request) error
	// bodyLimit, when set, replaces maxBody.
	bodyLimit int64
}

// New builds the admin API.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, log: opts.Log.With().Str("component", "syncer.api").Logger(),
		mux: http.NewServeMux(), now: time.Now, tokens: opts.Tokens}
	if s.tokens == nil && opts.AdminToken != "" {
		src, err := tokens.NewSource(tokens.SourceOptions{Static: []tokens.Token{tokens.New(AdminTokenName, tokens.Admin, opts.AdminToken)}})
		if err != nil {
			return nil, err
		}
		s.tokens = src
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_admin_requests_total", Help: "Admin API requests by route and status code.",
	}, []string{"route", "code"})
	s.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_admin_auth_denied_total", Help: "Admin API requests refused: reason unauthenticated (401) or forbidden (403, the token's role may not call the route).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{s.requests, s.denied} {
		if err := opts.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("api: metrics: %w", err)
		}
	}
	s.routes = s.table()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.Handle("/", s.wrap(route{path: "unmatched", public: true, handle: s.unmatched}))
	return s, nil
}

func (s *Server) table() []route {
	rts := []route{
		{method: "GET", path: "/health", public: true, handle: s.health},
		{method: "GET", path: "/ready", public: true, handle: s.ready},
		{method: "GET", path: "/metrics", public: true, handle: s.metrics},
		{method: "GET", path: "/v1/openapi.json", allow: anyRole, handle: s.openapi},
		{method: "GET", path: "/v1/version", public: true, handle: s.version},
		{method: "POST", path: "/v1/apply", allow: configWrite, handle: s.applyConfig, bodyLimit: maxApplyBody},
		{method: "POST", path: "/v1/plan", allow: planRead, handle: s.planConfig, bodyLimit: maxApplyBody},
		{method: "GET", path: "/v1/nodes", allow: configRead, handle: s.listNodes},
		{method: "GET", path: "/v1/status", allow: configRead, handle: s.status},
		{method: "GET", path: "/v1/audit", allow: auditRead, handle: s.audit},
	}
	rts = append(rts, apiKind.routes(s, configRead, configWrite)...)
	rts = append(rts, policyKind.routes(s, configRead, configWrite)...)
	rts = append(rts, orgKind.routes(s, configRead, configWrite)...)
	keys := keyKind.on(s)
	return append(rts,
		route{method: "POST", path: "/v1/keys", allow: keyIssue, handle: s.createKey},
		route{method: "GET", path: "/v1/keys", allow: keyRead, handle: keys.list},
		route{method: "GET", path: "/v1/keys/{id}", allow: keyRead, handle: keys.get},
		route{method: "PUT", path: "/v1/keys/{id}", allow: keyEdit, handle: s.putKey},
		route{method: "DELETE", path: "/v1/keys/{id}", allow: keyRevoke, handle: keys.delete},
		route{method: "POST", path: "/v1/keys/{id}/rotate", allow: keyIssue, handle: s.rotateKey},
	)
}

// Routes lists "METHOD /path" of every route, for the OpenAPI check.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.method + " " + rt.path
	}
	return out
}

// Handler is the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on addr and serves until Shutdown. It returns once the
// listener is open, so a bad address fails here.
func (s *Server) Start(_ context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", addr, err)
	}
	s.http = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("admin API listening")
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("admin API stopped")
		}
	}()
	return nil
}

// Shutdown stops accepting requests and waits for in-flight ones until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) wrap(rt route) http.Handler {
	label := rt.method + " " + rt.path
	if rt.method == "" {
		label = rt.path
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		r, span := s.traceCall(r, rt, label)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error().Interface("panic", p).Str("route", label).Msg("handler panicked")
				if sw.code == 0 {
					writeError(sw, toError(errors.New("panic")))
				}
			}
			s.requests.WithLabelValues(label, strconv.Itoa(sw.code)).Inc()
			endCall(span, sw.code)
		}()
		if !rt.public {
			var e *Error
			if r, e = s.authorize(r, rt); e != nil {
				writeError(sw, e)
				return
			}
		}
		limit := int64(maxBody)
		if rt.bodyLimit > 0 {
			limit = rt.bodyLimit
		}
		r.Body = http.MaxBytesReader(sw, r.Body, limit)
		if err := rt.handle(sw, r); err != nil {
			e := toError(err)
			if e.Status >= 500 {
				s.log.Error().Err(err).Str("route", label).Msg("admin request failed")
			}
			writeError(sw, e)
		}
	})
}

// unmatched answers a path no route has (404) or a known path with another
// method (405), in JSON.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pat := s.mux.Handler(probe); pat != "/" && pat != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return errorf(http.StatusMethodNotAllowed, codeMethod, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", "))
	}
	return errorf(http.StatusNotFound, codeNotFound, "no route for %s %s", r.Method, r.URL.Path)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	checks := map[string]string{"redis": "ok", "nats": "ok"}
	ok := true
	if err := s.opts.Store.Ping(ctx); err != nil {
		checks["redis"], ok = err.Error(), false
	}
	if s.opts.NATS == nil || !s.opts.NATS.IsConnected() {
		checks["nats"], ok = "not connected", false
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ok, "checks": checks})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDoc)
	return nil
}

func (s *Server) listNodes(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.opts.Nodes.List()})
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	v, err := s.opts.Store.Version(r.Context())
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	writeJSON(w, http.StatusOK, s.opts.Nodes.Status(v))
	return nil
}
