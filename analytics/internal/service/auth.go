package service

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/pkg/tokens"
)

// startAuth loads the tokens that may read usage (auth.token, named
// "token", and auth.tokens_file, re-read when it changes); with
// auth.disabled there are none and the query API is open.
func (s *Service) startAuth() error {
	s.denied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_analytics_unauthorized_total", Help: "Usage queries refused for a missing or wrong token.",
	})
	s.reg.MustRegister(s.denied)
	a := s.cfg.Auth
	if a.Disabled {
		s.log.Warn().Msg("auth.disabled: usage is served to anyone who can reach the listener")
		return nil
	}
	var static []tokens.Token
	if a.Token != "" {
		static = append(static, tokens.New("token", tokens.Viewer, a.Token))
	}
	src, err := tokens.NewSource(tokens.SourceOptions{Path: a.TokensFile, Static: static,
		Log: s.log.With().Str("component", "analytics.tokens").Logger(), Registry: s.reg})
	if err != nil {
		return err
	}
	src.Start()
	s.tokens = src
	return nil
}

// requireToken answers 401 unless the request carries a token of the set
// in force, in its one Authorization header (Bearer scheme). Any role may
// read usage.
func (s *Service) requireToken(next http.Handler) http.Handler {
	if s.tokens == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.tokens.Current().Authenticate(r); !ok {
			s.denied.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-analytics"`)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"code": "unauthorized", "message": "missing or wrong token: send Authorization: Bearer <token> (auth.token or auth.tokens_file)"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
