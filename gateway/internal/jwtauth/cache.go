package jwtauth

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cacheShards spreads the verification cache over several locks so
// concurrent requests rarely wait on each other.
const cacheShards = 16

// resultCache remembers verified tokens by the SHA-256 of the token, each
// until its exp, in bounded LRU shards. A hit allocates nothing.
type resultCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[[32]byte, *Result]
}

func newResultCache(size int) *resultCache {
	per := (size + cacheShards - 1) / cacheShards
	if per < 1 {
		per = 1
	}
	c := &resultCache{}
	for i := range c.shards {
		c.shards[i].lru, _ = simplelru.NewLRU[[32]byte, *Result](per, nil) // per >= 1: never fails
	}
	return c
}

func (c *resultCache) shard(sum *[32]byte) *cacheShard { return &c.shards[sum[0]%cacheShards] }

// get returns the cached result of a token, or nil. An entry whose exp has
// passed is removed, never returned.
func (c *resultCache) get(sum *[32]byte, now time.Time) *Result {
	s := c.shard(sum)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.lru.Get(*sum)
	if !ok {
		return nil
	}
	if !now.Before(r.ExpiresAt) {
		s.lru.Remove(*sum)
		return nil
	}
	return r
}

func (c *resultCache) add(sum *[32]byte, r *Result) {
	s := c.shard(sum)
	s.mu.Lock()
	s.lru.Add(*sum, r)
	s.mu.Unlock()
}

// len is the number of cached tokens.
func (c *resultCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
