// Package shardlru is a bounded LRU cache keyed by a SHA-256 sum, spread
// over independent shards so concurrent requests rarely wait on the same
// lock. The gateway's session cache and JWT verification cache use it on
// the request path: a hit takes one shard's mutex and allocates nothing.
//
// Eviction is per shard: the cache holds at most Size entries in total, and
// the least recently used entry of a full shard makes room. Keys are
// cryptographic hashes, so they spread evenly over the shards.
package shardlru

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Shards is the number of shards.
const Shards = 16

// Cache is a sharded LRU cache keyed by a SHA-256 sum (any type whose
// underlying type is [32]byte). The zero value is not usable: use New.
type Cache[K ~[32]byte, V any] struct {
	shards [Shards]shard[K, V]
}

type shard[K ~[32]byte, V any] struct {
	mu  sync.Mutex
	lru *simplelru.LRU[K, V]
	_   [40]byte // keep neighbouring shards' locks off one cache line
}

// New returns a cache holding at most size entries (at least one per shard).
func New[K ~[32]byte, V any](size int) *Cache[K, V] {
	per := (size + Shards - 1) / Shards
	if per < 1 {
		per = 1
	}
	c := &Cache[K, V]{}
	for i := range c.shards {
		c.shards[i].lru, _ = simplelru.NewLRU[K, V](per, nil) // per >= 1: never fails
	}
	return c
}

func (c *Cache[K, V]) shard(k *K) *shard[K, V] { return &c.shards[(*k)[0]%Shards] }

// Get returns the value of k and marks it recently used.
func (c *Cache[K, V]) Get(k *K) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.lru.Get(*k)
	s.mu.Unlock()
	return v, ok
}

// Peek returns the value of k without marking it used.
func (c *Cache[K, V]) Peek(k *K) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.lru.Peek(*k)
	s.mu.Unlock()
	return v, ok
}

// Add sets the value of k, evicting its shard's oldest entry when full.
func (c *Cache[K, V]) Add(k *K, v V) {
	s := c.shard(k)
	s.mu.Lock()
	s.lru.Add(*k, v)
	s.mu.Unlock()
}

// Remove forgets k.
func (c *Cache[K, V]) Remove(k *K) {
	s := c.shard(k)
	s.mu.Lock()
	s.lru.Remove(*k)
	s.mu.Unlock()
}

// RemoveIf forgets k when drop returns true for its current value, under
// the shard's lock, so a value replaced meanwhile is kept.
func (c *Cache[K, V]) RemoveIf(k *K, drop func(V) bool) {
	s := c.shard(k)
	s.mu.Lock()
	if v, ok := s.lru.Peek(*k); ok && drop(v) {
		s.lru.Remove(*k)
	}
	s.mu.Unlock()
}

// RemoveWhere forgets every entry for which drop returns true, one shard
// at a time: requests on other shards go on meanwhile.
func (c *Cache[K, V]) RemoveWhere(drop func(V) bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, k := range s.lru.Keys() {
			if v, ok := s.lru.Peek(k); ok && drop(v) {
				s.lru.Remove(k)
			}
		}
		s.mu.Unlock()
	}
}

// Purge forgets every entry.
func (c *Cache[K, V]) Purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.lru.Purge()
		s.mu.Unlock()
	}
}

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
