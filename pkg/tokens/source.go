package tokens

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DefaultInterval is how often a Source looks at its file by default.
const DefaultInterval = 2 * time.Second

// SourceOptions configure a Source.
type SourceOptions struct {
	// Path is the token file; empty: only Static.
	Path string
	// Static tokens are always in the set (e.g. a token from the
	// configuration), before the file's.
	Static []Token
	// Interval between looks at the file's modification time and size
	// (default DefaultInterval).
	Interval time.Duration
	Log      zerolog.Logger
	// Registry, when set, gets sluice_auth_token_reloads_total{result} and
	// sluice_auth_tokens.
	Registry prometheus.Registerer
}

// Source is the current token set: the static tokens plus the file's,
// re-read when the file changes. A file that no longer parses keeps the
// previous set in force; the error is logged (never with a token in it)
// and counted.
type Source struct {
	opts    SourceOptions
	cur     atomic.Pointer[Set]
	seen    stamp // the file state last read, good or bad
	reloads *prometheus.CounterVec
	count   prometheus.Gauge
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
}

type stamp struct {
	mod  time.Time
	size int64
}

// NewSource reads the file once: a missing or bad file at start is an
// error (the service should not start without its tokens).
func NewSource(opts SourceOptions) (*Source, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	s := &Source{opts: opts, stop: make(chan struct{}), done: make(chan struct{}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_auth_token_reloads_total",
			Help: "Reads of the token file after a change, by result (ok, error: the previous tokens stay in force).",
		}, []string{"result"}),
		count: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_auth_tokens", Help: "Tokens currently accepted.",
		})}
	s.reloads.WithLabelValues("ok")
	s.reloads.WithLabelValues("error")
	if opts.Registry != nil {
		for _, c := range []prometheus.Collector{s.reloads, s.count} {
			if err := opts.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("tokens: metrics: %w", err)
			}
		}
	}
	if opts.Path == "" {
		s.set(NewSet(opts.Static...))
		return s, nil
	}
	st, set, err := s.read()
	if err != nil {
		return nil, err
	}
	s.seen = st
	s.set(set)
	return s, nil
}

func (s *Source) set(set *Set) {
	s.cur.Store(set)
	s.count.Set(float64(set.Len()))
}

// Current returns the set in force.
func (s *Source) Current() *Set { return s.cur.Load() }

// read stats and parses the file, and returns the set with the static
// tokens first.
func (s *Source) read() (stamp, *Set, error) {
	fi, err := os.Stat(s.opts.Path)
	if err != nil {
		return stamp{}, nil, fmt.Errorf("token file: %w", err)
	}
	st := stamp{mod: fi.ModTime(), size: fi.Size()}
	data, err := os.ReadFile(s.opts.Path)
	if err != nil {
		return st, nil, fmt.Errorf("token file: %w", err)
	}
	fileSet, err := Parse(data)
	if err != nil {
		return st, nil, fmt.Errorf("token file %s: %w", s.opts.Path, err)
	}
	return st, NewSet(append(append([]Token(nil), s.opts.Static...), fileSet.tokens...)...), nil
}

// Check re-reads the file if its modification time or size changed since
// the last read (good or bad). It reports whether a new set took effect.
func (s *Source) Check() bool {
	if s.opts.Path == "" {
		return false
	}
	fi, err := os.Stat(s.opts.Path)
	if err == nil && (stamp{mod: fi.ModTime(), size: fi.Size()}) == s.seen {
		return false
	}
	st, set, err := s.read()
	if err != nil && st == s.seen {
		return false // already reported
	}
	s.seen = st
	if err != nil {
		s.reloads.WithLabelValues("error").Inc()
		s.opts.Log.Error().Err(err).Int("tokens_in_force", s.Current().Len()).
			Msg("token file not reloaded: the previous tokens stay in force")
		return false
	}
	s.reloads.WithLabelValues("ok").Inc()
	s.set(set)
	s.opts.Log.Info().Strs("names", set.Names()).Msg("token file reloaded")
	return true
}

// Start looks at the file every Interval until Close.
func (s *Source) Start() {
	if s.opts.Path == "" || !s.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.Check()
			}
		}
	}()
}

// Close stops the polling started by Start and waits for it.
func (s *Source) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	if !s.started.Load() {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
