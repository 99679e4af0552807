// Package auth authenticates API keys: it extracts the key from a request,
// hashes it and finds its session, from a bounded in-process cache or from
// Redis (store.KeyByHash). Unknown hashes are remembered for a short time
// in a bounded negative cache, so a flood of bad keys costs Redis little.
// Verified token identities (internal/jwtauth) get sessions from the same
// cache (Identity), built from their policies without a store lookup.
//
// Cached sessions are evicted by config sync (Evict, EvictPolicy); the
// session TTL bounds how stale a session can be if an eviction is missed.
package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
)

// Errors Lookup and Session.Usable return. The server maps them to
// responses: ErrUnavailable to 503, the others to 401.
var (
	ErrUnknownKey  = errors.New("unknown api key")
	ErrExpired     = errors.New("api key expired")
	ErrDisabled    = errors.New("api key disabled")
	ErrUnavailable = errors.New("key store unavailable")
)

// Options size the caches.
type Options struct {
	CacheSize         int
	TTL               time.Duration
	NegativeCacheSize int
	NegativeTTL       time.Duration
	LookupTimeout     time.Duration
}

// Cache holds sessions by key hash and remembers unknown hashes.
type Cache struct {
	opts     Options
	store    *store.Store
	policy   func(id string) *model.Policy
	sessions *lru.Cache[Sum, entry]
	negative *lru.Cache[Sum, time.Time]
	// gen changes on every eviction: a lookup that raced with one does not
	// cache what it read.
	gen atomic.Uint64
	mu  sync.Mutex // serializes EvictPolicy scans
	now func() time.Time
}

type entry struct {
	s       *Session
	expires time.Time
}

// NewCache returns a session cache reading keys from st and policies from
// policy (the current config snapshot).
func NewCache(st *store.Store, policy func(id string) *model.Policy, opts Options) (*Cache, error) {
	if opts.CacheSize <= 0 || opts.NegativeCacheSize <= 0 {
		return nil, errors.New("auth: cache sizes must be positive")
	}
	sessions, err := lru.New[Sum, entry](opts.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	negative, err := lru.New[Sum, time.Time](opts.NegativeCacheSize)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Cache{opts: opts, store: st, policy: policy, sessions: sessions, negative: negative, now: time.Now}, nil
}

// Lookup returns the session of the key whose SHA-256 is sum. A cached
// session costs no Redis call and no allocation. It returns ErrUnknownKey
// or ErrUnavailable (Redis failed or timed out); a disabled or expired key
// is returned as a session: check Session.Usable.
func (c *Cache) Lookup(ctx context.Context, sum Sum) (*Session, error) {
	now := c.now()
	if e, ok := c.sessions.Get(sum); ok {
		if now.Before(e.expires) {
			return e.s, nil
		}
		c.sessions.Remove(sum)
	}
	if until, ok := c.negative.Get(sum); ok {
		if now.Before(until) {
			return nil, ErrUnknownKey
		}
		c.negative.Remove(sum)
	}
	gen := c.gen.Load()
	var hexbuf [64]byte
	hash := string(hex.AppendEncode(hexbuf[:0], sum[:]))
	if c.opts.LookupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.LookupTimeout)
		defer cancel()
	}
	k, err := c.store.KeyByHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c.gen.Load() == gen {
			c.negative.Add(sum, now.Add(c.opts.NegativeTTL))
		}
		return nil, ErrUnknownKey
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if k.Hash != hash {
		return nil, ErrUnknownKey
	}
	s := NewSession(k, c.policy)
	if c.gen.Load() == gen {
		c.sessions.Add(sum, entry{s: s, expires: now.Add(c.opts.TTL)})
	}
	return s, nil
}

// Identity returns the session of a verified token identity (see
// jwtauth.Result): sum is the token's session key (identity and policies),
// hash the identity hash limits, quotas and usage events count against,
// policies the policy ids the token's claims map to. A cached session costs
// no allocation; a miss builds one from the current policies, without
// Redis. Tokens of one identity with the same policies share the session.
// It has no expiry of its own (the verifier enforces exp) and holds its
// policies, so EvictPolicy forgets it like a key's session.
func (c *Cache) Identity(sum Sum, hash string, policies []string) *Session {
	now := c.now()
	if e, ok := c.sessions.Get(sum); ok {
		if now.Before(e.expires) {
			return e.s
		}
		c.sessions.Remove(sum)
	}
	gen := c.gen.Load()
	s := NewSession(&model.Key{ID: IdentityKeyID, Hash: hash, Policies: policies}, c.policy)
	if c.gen.Load() == gen {
		c.sessions.Add(sum, entry{s: s, expires: now.Add(c.opts.TTL)})
	}
	return s
}

// IdentityKeyID is the KeyID of sessions built for token identities.
const IdentityKeyID = "jwt"

// Evict forgets the sessions (and negative entries) of the given hex key
// hashes; empty or malformed hashes are ignored.
func (c *Cache) Evict(hashes ...string) {
	c.gen.Add(1)
	for _, h := range hashes {
		var sum Sum
		if len(h) != 2*len(sum) {
			continue
		}
		if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
			continue
		}
		c.sessions.Remove(sum)
		c.negative.Remove(sum)
	}
}

// EvictPolicy forgets every session holding policy id.
func (c *Cache) EvictPolicy(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, sum := range c.sessions.Keys() {
		if e, ok := c.sessions.Peek(sum); ok && e.s.HoldsPolicy(id) {
			c.sessions.Remove(sum)
		}
	}
}

// Purge forgets every session and negative entry.
func (c *Cache) Purge() {
	c.gen.Add(1)
	c.sessions.Purge()
	c.negative.Purge()
}

// Len returns the number of cached sessions.
func (c *Cache) Len() int { return c.sessions.Len() }
