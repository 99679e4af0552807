// Package edgetls is TLS on the gateway's traffic listener: server
// certificates chosen by SNI from a set swapped atomically when the files
// change on disk (polled; a file that fails to load keeps the previous set
// serving), client certificate verification for mutual TLS, and a
// listener that counts failed handshakes by reason.
package edgetls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Edge holds the current certificate set of the HTTPS listener and keeps
// it current.
type Edge struct {
	opts    Options
	base    *tls.Config
	sources []string
	set     atomic.Pointer[certSet]
	// failed holds the contents of the last set that failed to load, so a
	// bad file is reported once, not on every poll.
	failed [][]byte
	mu     sync.Mutex // serialises Check
	m      *metrics
	log    zerolog.Logger
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// New loads the certificates of opts (already validated) and registers the
// metrics. It fails, naming the file, when the first load fails.
func New(opts Options, reg prometheus.Registerer, log zerolog.Logger) (*Edge, error) {
	opts = opts.WithDefaults()
	minV, err := minVersion(opts.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("edgetls: min_version: %w", err)
	}
	if len(opts.Certificates) == 0 {
		return nil, errors.New("edgetls: no certificates")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("edgetls: metrics: %w", err)
	}
	e := &Edge{
		opts: opts, sources: opts.sources(), m: m,
		log:  log.With().Str("component", "gateway.tls").Logger(),
		base: &tls.Config{MinVersion: minV, ClientAuth: clientAuth(opts.ClientAuth), NextProtos: []string{"http/1.1"}},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	files, err := readSources(e.sources)
	if err != nil {
		return nil, fmt.Errorf("edgetls: %w", err)
	}
	set, err := buildSet(&e.opts, e.base, files)
	if err != nil {
		return nil, fmt.Errorf("edgetls: %w", err)
	}
	e.set.Store(set)
	e.warnExpiry(set)
	return e, nil
}

// Config is the listener's TLS config: each handshake takes the current
// set's config (certificates and client CAs).
func (e *Edge) Config() *tls.Config {
	cfg := e.base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return e.set.Load().config, nil }
	return cfg
}

// Start polls the files every reload interval until Shutdown.
func (e *Edge) Start(context.Context) error {
	go e.loop()
	return nil
}

// Shutdown stops polling.
func (e *Edge) Shutdown(ctx context.Context) error {
	e.once.Do(func() { close(e.stop) })
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Edge) loop() {
	defer close(e.done)
	t := time.NewTicker(e.opts.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.Check()
		}
	}
}

// Check reads the files and, when any changed, loads them as the new set.
// A set that fails to load (a missing or unreadable file, a key that does
// not match its certificate) leaves the current one serving; it is logged
// and counted once per distinct content. It reports whether a new set was
// installed.
func (e *Edge) Check() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	files, err := readSources(e.sources)
	if err != nil {
		e.reloadFailed(err, nil)
		return false
	}
	if sameContents(files, e.set.Load().files) {
		e.failed = nil // back to what serves: a later failure is news
		return false
	}
	if e.failed != nil && sameContents(files, e.failed) {
		return false
	}
	set, err := buildSet(&e.opts, e.base, files)
	if err != nil {
		e.reloadFailed(err, files)
		return false
	}
	e.failed = nil
	e.set.Store(set)
	e.m.reloads.Inc()
	e.log.Info().Int("certificates", len(e.opts.Certificates)).Msg("tls certificates reloaded")
	e.warnExpiry(set)
	return true
}

// reloadFailed logs and counts a failed reload: once per distinct content
// of the files, and once per run of read errors (files nil).
func (e *Edge) reloadFailed(err error, files [][]byte) {
	if files == nil {
		if e.failed != nil && len(e.failed) == 0 {
			return
		}
		files = [][]byte{}
	}
	e.failed = files
	e.m.reloadErrors.Inc()
	e.log.Error().Err(err).Msg("tls certificates not reloaded, the previous ones keep serving")
}

func (e *Edge) warnExpiry(s *certSet) {
	now := time.Now()
	for _, c := range s.allCerts() {
		if c.Leaf != nil && now.After(c.Leaf.NotAfter) {
			e.log.Warn().Str("subject", c.Leaf.Subject.String()).Time("not_after", c.Leaf.NotAfter).Msg("tls certificate has expired")
		}
	}
}

func (s *certSet) allCerts() []*tls.Certificate {
	seen := map[*tls.Certificate]bool{s.def: true}
	out := []*tls.Certificate{s.def}
	for _, m := range []map[string]*tls.Certificate{s.exact, s.wildcard} {
		for _, c := range m {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}
