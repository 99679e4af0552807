// Package state holds what a gateway node knows of the configuration: the
// routing snapshot (APIs with their upstream clients), the policies and the
// cache of key sessions. Readers get an immutable *Snapshot from an
// atomic.Pointer and take no lock; writers (Reload, Apply) are serialized by
// one mutex, build a new snapshot and swap it in. An API with JWT settings
// carries its jwtauth.Verifier in the snapshot, kept across rebuilds while
// its settings are unchanged.
//
// Config sync (internal/sync) calls Apply for every changelog version in
// order and Reload when it lost track; Version is the version applied.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/router"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// ErrVersionGap is returned by Apply when the version is not the next one:
// the caller catches up from the changelog or calls Reload.
var ErrVersionGap = errors.New("config version gap")

// API is one API as the request path uses it.
type API struct {
	*model.API
	Upstream *proxy.Upstream
	FailOpen bool
	// MaxBody is the request body bound for this API.
	MaxBody int
	// Per endpoint i: its RateLimit-Policy name, its keyless counter id
	// (store.EndpointRateCounter) and the prefix of its per-identity one
	// (store.EndpointKeyRatePrefix).
	EndpointName      []string
	EndpointKey       []string
	EndpointKeyPrefix []string
	// JWT verifies the API's tokens: set when auth.jwt is set and the mode
	// is jwt or api_key ("API key or JWT"); nil when it could not be built
	// (the API then answers 500 to token callers, and the error is logged).
	JWT *jwtauth.Verifier
}

// Snapshot is one immutable view of the configuration.
type Snapshot struct {
	Version  int64
	Table    *router.Table
	APIs     []*API // indexed by router.Route.Index
	policies map[string]*model.Policy
	orgs     map[string]*Org
	byID     map[string]*API
}

// Org is an org as the request path uses it: its limits with their
// counter ids, fixed once per snapshot (store.OrgRateCounter and
// store.OrgQuotaCounter, under the org's hash tag: limit.Rule.OrgScope).
type Org struct {
	*model.Org
	LimitKey, QuotaKey string
}

// Policy returns the policy with id, or nil.
func (s *Snapshot) Policy(id string) *model.Policy { return s.policies[id] }

// Org returns the org with id, or nil.
func (s *Snapshot) Org(id string) *Org { return s.orgs[id] }

// API returns the API with id, or nil.
func (s *Snapshot) API(id string) *API { return s.byID[id] }

// Options configure the state.
type Options struct {
	Proxy proxy.Options
	Auth  auth.Options
	// MaxBody is the gateway-wide request body bound.
	MaxBody int
	// RetryInterval is the pause between start-up load attempts (default 500ms).
	RetryInterval time.Duration
	// JWT builds the verifiers of APIs with auth.jwt settings; nil: such
	// APIs cannot verify tokens.
	JWT *jwtauth.Provider
}

// State is the node's configuration state.
type State struct {
	store    *store.Store
	opts     Options
	log      zerolog.Logger
	snap     atomic.Pointer[Snapshot]
	version  atomic.Int64
	applied  atomic.Int64 // Unix nanoseconds of the last version applied
	loaded   atomic.Bool
	sessions *auth.Cache
	mu       sync.Mutex // serializes Reload and Apply
	stop     context.CancelFunc
	done     chan struct{}

	// keysEvicted, when set, hears the key hashes evict forgot.
	keysEvicted atomic.Pointer[func(hashes []string)]
	// apisRemoved, when set, hears the ids of APIs a new snapshot dropped.
	apisRemoved atomic.Pointer[func(ids []string)]
}

// New returns an empty state; Start (or Reload) loads it.
func New(st *store.Store, opts Options, log zerolog.Logger) (*State, error) {
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 500 * time.Millisecond
	}
	s := &State{store: st, opts: opts, log: log.With().Str("component", "gateway.state").Logger()}
	s.snap.Store(&Snapshot{Table: router.Build(nil), policies: map[string]*model.Policy{}, orgs: map[string]*Org{}, byID: map[string]*API{}})
	sessions, err := auth.NewCache(st, opts.Auth)
	if err != nil {
		return nil, err
	}
	s.sessions = sessions
	return s, nil
}

// Snapshot returns the current snapshot.
func (s *State) Snapshot() *Snapshot { return s.snap.Load() }

// Sessions returns the session cache.
func (s *State) Sessions() *auth.Cache { return s.sessions }

// Loaded reports whether a full snapshot was loaded once.
func (s *State) Loaded() bool { return s.loaded.Load() }

// Version returns the version of the applied config.
func (s *State) Version() int64 { return s.version.Load() }

// AppliedAt returns when the node last applied a version (zero before the
// first).
func (s *State) AppliedAt() time.Time {
	if n := s.applied.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Start loads the snapshot in the background, retrying until Redis answers.
func (s *State) Start(ctx context.Context) error {
	ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		for attempt := 1; ; attempt++ {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := s.Reload(rctx)
			cancel()
			if err == nil {
				return
			}
			if attempt == 1 || attempt%20 == 0 {
				s.log.Warn().Err(err).Int("attempt", attempt).Msg("config not loaded yet, retrying")
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.opts.RetryInterval):
			}
		}
	}()
	return nil
}

// Shutdown stops a start-up load still retrying.
func (s *State) Shutdown(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reload reads the whole configuration and swaps it in; every cached
// session is dropped, since keys and policies may have changed.
func (s *State) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.store.LoadSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("state: reload: %w", err)
	}
	pols := make(map[string]*model.Policy, len(snap.Policies))
	for i := range snap.Policies {
		pols[snap.Policies[i].ID] = &snap.Policies[i]
	}
	orgs := make(map[string]*Org, len(snap.Orgs))
	for i := range snap.Orgs {
		orgs[snap.Orgs[i].ID] = newOrg(&snap.Orgs[i])
	}
	s.install(snap.Version, snap.APIs, pols, orgs)
	s.sessions.Purge()
	s.loaded.Store(true)
	s.log.Info().Int64("version", snap.Version).Int("apis", len(snap.APIs)).Int("policies", len(pols)).Msg("config loaded")
	return nil
}

// Apply applies one changelog version: it re-reads the APIs and policies it
// changed, rebuilds the snapshot when any did, evicts the sessions of the
// keys it changed (Hash and OldHash) and of the policies it changed, then
// sets Version. A version at or below Version is ignored; a version past
// Version+1 returns ErrVersionGap. v must be one read from the store's
// changelog (store.ChangesSince), never one built from a sync message:
// Version is then always a version Redis holds.
func (s *State) Apply(ctx context.Context, v store.Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.version.Load()
	switch {
	case v.Version <= cur:
		return nil
	case v.Version != cur+1:
		return fmt.Errorf("state: apply version %d on %d: %w", v.Version, cur, ErrVersionGap)
	}
	// Evictions first: they need no store read, so a revoked key or a
	// changed policy stops being served even when reading the rest fails.
	s.evict(v)
	old := s.snap.Load()
	apis := make(map[string]model.API, len(old.APIs))
	for _, a := range old.APIs {
		apis[a.ID] = *a.API
	}
	pols := maps(old.policies)
	orgs := maps(old.orgs)
	rebuild := false
	for _, c := range v.Changes {
		switch c.Kind {
		case store.KindAPI:
			var a model.API
			found, err := s.read(ctx, c, &a)
			if err != nil {
				return err
			}
			if found {
				apis[c.ID] = a
			} else {
				delete(apis, c.ID)
			}
			rebuild = true
		case store.KindPolicy:
			var p model.Policy
			found, err := s.read(ctx, c, &p)
			if err != nil {
				return err
			}
			if found {
				pols[c.ID] = &p
			} else {
				delete(pols, c.ID)
			}
			rebuild = true
		case store.KindOrg:
			var o model.Org
			found, err := s.read(ctx, c, &o)
			if err != nil {
				return err
			}
			if found {
				orgs[c.ID] = newOrg(&o)
			} else {
				delete(orgs, c.ID)
			}
			rebuild = true
		}
	}
	if rebuild {
		list := make([]model.API, 0, len(apis))
		for _, a := range apis {
			list = append(list, a)
		}
		s.install(v.Version, list, pols, orgs)
	}
	s.evict(v) // again: a lookup between the first eviction and the new snapshot read the old policies
	s.version.Store(v.Version)
	s.applied.Store(time.Now().UnixNano())
	return nil
}

// Revoke forgets the cached sessions a version not applied yet changes
// (keys by Hash and OldHash, and every session holding a changed policy),
// without reading the store: config sync calls it for a version it cannot
// apply yet (a gap, or the store down), so a revocation heard on NATS
// applies at once. Apply does the same, so the version may come later.
func (s *State) Revoke(v store.Version) {
	if v.Version <= s.version.Load() {
		return
	}
	s.evict(v)
}

func (s *State) evict(v store.Version) {
	var keyHashes []string
	for _, c := range v.Changes {
		switch c.Kind {
		case store.KindKey:
			keyHashes = append(keyHashes, c.Hash, c.OldHash)
		case store.KindPolicy:
			s.sessions.EvictPolicy(c.ID)
		}
	}
	s.sessions.Evict(keyHashes...)
	if f := s.keysEvicted.Load(); f != nil && len(keyHashes) > 0 {
		(*f)(keyHashes)
	}
}

// OnKeysEvicted sets f to hear the hashes of the keys whose sessions a
// version evicts (Apply, Revoke), after their eviction. f runs on the
// caller of Apply or Revoke: it must not block (the traffic server uses it
// to check its upgraded connections again, in the background).
func (s *State) OnKeysEvicted(f func(hashes []string)) { s.keysEvicted.Store(&f) }

// OnAPIsRemoved sets f to hear the ids of APIs deleted from the config
// (after the snapshot without them is in place), so per-API state held
// elsewhere is released.
func (s *State) OnAPIsRemoved(f func(ids []string)) { s.apisRemoved.Store(&f) }

func maps[T any](m map[string]*T) map[string]*T {
	out := make(map[string]*T, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// read loads the current body of a changed object; found is false when it
// no longer exists (deleted in this or a later version).
func (s *State) read(ctx context.Context, c store.Entry, dst any) (bool, error) {
	if c.Op == store.OpDelete {
		return false, nil
	}
	body, _, err := s.store.GetRaw(ctx, c.Kind, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("state: read %s %s: %w", c.Kind, c.ID, err)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return false, fmt.Errorf("state: decode %s %s: %w", c.Kind, c.ID, err)
	}
	return true, nil
}

// install builds and swaps in a snapshot; callers hold mu. Invalid APIs are
// left out (logged): the store validates on write, so this only guards
// against data written by other means.
func (s *State) install(version int64, list []model.API, pols map[string]*model.Policy, orgs map[string]*Org) {
	old := s.snap.Load()
	slices.SortFunc(list, func(a, b model.API) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	valid := list[:0]
	for _, a := range list {
		if errs := a.Validate(); len(errs) > 0 {
			s.log.Error().Str("api", a.ID).Str("problems", errs.Error()).Msg("api definition invalid, not served")
			continue
		}
		valid = append(valid, a)
	}
	snap := &Snapshot{Version: version, Table: router.Build(valid), policies: pols, orgs: orgs, byID: map[string]*API{}}
	for i := range valid {
		a, err := s.buildAPI(&valid[i], old.byID[valid[i].ID])
		if err != nil {
			s.log.Error().Err(err).Str("api", valid[i].ID).Msg("api upstream or jwt settings unusable")
		}
		snap.APIs = append(snap.APIs, a)
		snap.byID[a.ID] = a
	}
	s.snap.Store(snap)
	// Before the evictions that follow (Apply evicts again, Reload purges):
	// a session built after them merges the new policies.
	s.sessions.SetPolicies(pols)
	var removed []string
	for id, a := range old.byID {
		n := snap.byID[id]
		if a.Upstream != nil && (n == nil || n.Upstream != a.Upstream) {
			a.Upstream.Close()
		}
		if n == nil {
			removed = append(removed, id)
		}
	}
	if f := s.apisRemoved.Load(); f != nil && len(removed) > 0 {
		(*f)(removed)
	}
	s.version.Store(version)
	s.applied.Store(time.Now().UnixNano())
}

func (s *State) buildAPI(m *model.API, prev *API) (*API, error) {
	a := &API{API: m, FailOpen: m.OnStoreError != model.StoreErrorClosed, MaxBody: s.opts.MaxBody}
	if m.MaxBodyBytes > 0 && m.MaxBodyBytes < int64(a.MaxBody) {
		a.MaxBody = int(m.MaxBodyBytes)
	}
	for i := range m.Endpoints {
		a.EndpointName = append(a.EndpointName, "endpoint-"+strconv.Itoa(i))
		a.EndpointKey = append(a.EndpointKey, store.EndpointRateCounter(i))
		a.EndpointKeyPrefix = append(a.EndpointKeyPrefix, store.EndpointKeyRatePrefix(i))
	}
	jwtErr := s.buildJWT(a, prev)
	if prev != nil && prev.Upstream != nil && prev.Upstream.Same(m.Upstream, s.opts.Proxy) {
		a.Upstream = prev.Upstream
		return a, jwtErr
	}
	if t := m.Upstream.TLS; t != nil && t.InsecureSkipVerify {
		s.log.Warn().Str("api", m.ID).Msg("upstream.tls.insecure_skip_verify: the upstream's certificate is not verified")
	}
	up, err := proxy.New(m.Upstream, s.opts.Proxy)
	a.Upstream = up
	return a, errors.Join(err, jwtErr)
}

// buildJWT sets a.JWT for an API that verifies tokens. Unchanged JWT
// settings keep the previous verifier, and with it its warm cache of
// verified tokens.
func (s *State) buildJWT(a *API, prev *API) error {
	m := a.API
	if m.Auth.JWT == nil || (m.Auth.Mode != model.AuthJWT && m.Auth.Mode != model.AuthAPIKey) {
		return nil
	}
	if prev != nil && prev.JWT != nil && reflect.DeepEqual(prev.API.Auth.JWT, m.Auth.JWT) {
		a.JWT = prev.JWT
		return nil
	}
	if s.opts.JWT == nil {
		return errors.New("jwt: this gateway has no jwt provider")
	}
	v, err := s.opts.JWT.Verifier(m.Auth.JWT)
	if err != nil {
		return fmt.Errorf("jwt verifier: %w", err)
	}
	a.JWT = v
	return nil
}

// newOrg returns the request path's form of o.
func newOrg(o *model.Org) *Org {
	return &Org{Org: o, LimitKey: store.OrgRateCounter(o.ID), QuotaKey: store.OrgQuotaCounter(o.ID)}
}
