// Package auth authenticates API keys: it extracts the key from a request,
// hashes it and finds its session, from a bounded in-process cache or from
// Redis (store.KeyByHash). Unknown hashes are remembered for a short time
// in a bounded negative cache, so a flood of bad keys costs Redis little.
// Verified token identities (internal/jwtauth) get sessions from the same
// cache (Identity), built from their policies without a store lookup.
//
// Sessions merge a key with the node's current policies, which the cache
// is given as data (SetPolicies) by whoever holds the configuration
// (internal/state): auth reads no snapshot of its own.
//
// Cached sessions are evicted by config sync (Evict, EvictPolicy); the
// session TTL bounds how stale a session can be if an eviction is missed.
// Once its TTL has run out a session is read again; when the store cannot
// answer, Lookup still returns the cached session, with ErrStale, for up to
// Options.MaxStale past its TTL (0: as long as the node holds it), so a
// fail-open API keeps serving the keys its node knows for a whole store
// outage. An eviction still forgets the session at once, outage or not.
package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/shardlru"
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
	// ErrStale comes with a session Lookup could not re-read because the
	// store failed: the session as the node last read it, within
	// Options.MaxStale. It wraps ErrUnavailable, so a caller that does not
	// look for it treats the key as unverifiable.
	ErrStale = fmt.Errorf("%w: cached session past its ttl", ErrUnavailable)
)

// DefaultStoreRetry is the default Options.StoreRetry.
const DefaultStoreRetry = time.Second

// Options size the caches.
type Options struct {
	CacheSize         int
	TTL               time.Duration
	NegativeCacheSize int
	NegativeTTL       time.Duration
	LookupTimeout     time.Duration
	// MaxStale bounds how long past its TTL a cached session is still
	// returned (with ErrStale) while the store cannot be read; 0: no bound.
	MaxStale time.Duration
	// StoreRetry: after a failed re-read, sessions past their TTL are
	// returned stale without asking the store again for this long, so a
	// frozen store does not cost every request a lookup timeout (default
	// DefaultStoreRetry).
	StoreRetry time.Duration
	// Observe, when set, is told the time and error of each key read from
	// the store (not found is no error).
	Observe func(time.Duration, error)
}

// Cache holds sessions by key hash and remembers unknown hashes.
type Cache struct {
	opts  Options
	store *store.Store
	// policies are the node's current policies by id (SetPolicies); the
	// map is never modified once stored.
	policies atomic.Pointer[map[string]*model.Policy]
	// sessions and negative are sharded: lookups of different keys do not
	// wait on one lock.
	sessions *shardlru.Cache[Sum, entry]
	negative *shardlru.Cache[Sum, time.Time]
	// gen changes on every eviction: a lookup that raced with one does not
	// cache what it read.
	gen atomic.Uint64
	now func() time.Time
	// downUntil (Unix ns): until then sessions past their TTL are returned
	// stale without a store call.
	downUntil atomic.Int64
	stale     atomic.Uint64 // lookups answered with ErrStale
}

type entry struct {
	s       *Session
	expires time.Time // end of the TTL: read again after it
}

// NewCache returns a session cache reading keys from st. It knows no
// policy until SetPolicies.
func NewCache(st *store.Store, opts Options) (*Cache, error) {
	if opts.CacheSize <= 0 || opts.NegativeCacheSize <= 0 {
		return nil, errors.New("auth: cache sizes must be positive")
	}
	sessions := shardlru.New[Sum, entry](opts.CacheSize)
	negative := shardlru.New[Sum, time.Time](opts.NegativeCacheSize)
	if opts.MaxStale < 0 {
		return nil, errors.New("auth: max stale must not be negative")
	}
	if opts.StoreRetry <= 0 {
		opts.StoreRetry = DefaultStoreRetry
	}
	c := &Cache{opts: opts, store: st, sessions: sessions, negative: negative, now: time.Now}
	c.SetPolicies(nil)
	return c, nil
}

// SetPolicies sets the policies, by id, that sessions built from now on
// merge their keys with; the caller does not modify policies afterwards.
// It does not evict a session: the caller that changed a policy calls
// EvictPolicy (or Purge) after SetPolicies, and a lookup that raced with
// that eviction does not cache what it built (see gen), so no session built
// from the old policies outlives the eviction.
func (c *Cache) SetPolicies(policies map[string]*model.Policy) { c.policies.Store(&policies) }

// Lookup returns the session of the key whose SHA-256 is sum. A cached
// session costs no Redis call and no allocation. It returns ErrUnknownKey
// or ErrUnavailable (Redis failed or timed out, nothing usable cached); a
// disabled or expired key is returned as a session: check Session.Usable.
// A cached session past its TTL that the store could not re-read is
// returned with an error wrapping ErrStale (and ErrUnavailable) while it is
// within Options.MaxStale: the caller decides whether to serve it.
func (c *Cache) Lookup(ctx context.Context, sum Sum) (*Session, error) {
	now := c.now()
	e, cached := c.sessions.Get(&sum)
	if cached {
		if now.Before(e.expires) {
			return e.s, nil
		}
		if now.UnixNano() < c.downUntil.Load() {
			return c.staleOr(sum, e, now, ErrUnavailable)
		}
	}
	if until, ok := c.negative.Get(&sum); ok {
		if now.Before(until) {
			return nil, ErrUnknownKey
		}
		c.negative.Remove(&sum)
	}
	gen := c.gen.Load()
	var hexbuf [64]byte
	hash := string(hex.AppendEncode(hexbuf[:0], sum[:]))
	if c.opts.LookupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.LookupTimeout)
		defer cancel()
	}
	t := time.Now()
	k, err := c.store.KeyByHash(ctx, hash)
	if c.opts.Observe != nil {
		oerr := err
		if errors.Is(err, store.ErrNotFound) {
			oerr = nil
		}
		c.opts.Observe(time.Since(t), oerr)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		if cached {
			c.sessions.Remove(&sum)
		}
		if c.gen.Load() == gen {
			c.negative.Add(&sum, now.Add(c.opts.NegativeTTL))
		}
		return nil, ErrUnknownKey
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		if !cached {
			return nil, err
		}
		c.downUntil.Store(now.Add(c.opts.StoreRetry).UnixNano())
		return c.staleOr(sum, e, now, err)
	}
	if k.Hash != hash {
		return nil, ErrUnknownKey
	}
	s := NewSession(k, *c.policies.Load())
	if c.gen.Load() == gen {
		c.sessions.Add(&sum, entry{s: s, expires: now.Add(c.opts.TTL)})
	}
	return s, nil
}

// staleOr returns the cached session e of sum with ErrStale when it is
// still cached (no eviction since it was read) and within MaxStale, else
// nil and err.
func (c *Cache) staleOr(sum Sum, e entry, now time.Time, err error) (*Session, error) {
	if cur, ok := c.sessions.Peek(&sum); !ok || cur.s != e.s {
		return nil, err // evicted meanwhile: a revocation wins
	}
	if c.opts.MaxStale > 0 && !now.Before(e.expires.Add(c.opts.MaxStale)) {
		return nil, err
	}
	c.stale.Add(1)
	return e.s, ErrStale
}

// StaleServed returns how many lookups returned a stale session.
func (c *Cache) StaleServed() uint64 { return c.stale.Load() }

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
	if e, ok := c.sessions.Get(&sum); ok {
		if now.Before(e.expires) {
			return e.s
		}
		c.sessions.Remove(&sum)
	}
	gen := c.gen.Load()
	s := NewSession(&model.Key{ID: IdentityKeyID, Hash: hash, Policies: policies}, *c.policies.Load())
	if c.gen.Load() == gen {
		c.sessions.Add(&sum, entry{s: s, expires: now.Add(c.opts.TTL)})
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
		c.sessions.Remove(&sum)
		c.negative.Remove(&sum)
	}
}

// EvictPolicy forgets every session holding policy id.
func (c *Cache) EvictPolicy(id string) {
	c.gen.Add(1)
	c.sessions.RemoveWhere(func(e entry) bool { return e.s.HoldsPolicy(id) })
}

// Purge forgets every session and negative entry.
func (c *Cache) Purge() {
	c.gen.Add(1)
	c.sessions.Purge()
	c.negative.Purge()
}

// Len returns the number of cached sessions.
func (c *Cache) Len() int { return c.sessions.Len() }
