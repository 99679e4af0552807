package jwtauth

import (
	"time"

	"github.com/sluicegw/sluice/gateway/internal/shardlru"
)

// resultCache remembers verified tokens by the SHA-256 of the token, each
// until its exp, in a bounded sharded LRU. A hit allocates nothing.
type resultCache struct {
	lru *shardlru.Cache[[32]byte, *Result]
}

func newResultCache(size int) *resultCache {
	return &resultCache{lru: shardlru.New[[32]byte, *Result](size)}
}

// get returns the cached result of a token, or nil. An entry whose exp has
// passed is removed, never returned.
func (c *resultCache) get(sum *[32]byte, now time.Time) *Result {
	r, ok := c.lru.Get(sum)
	if !ok {
		return nil
	}
	if !now.Before(r.ExpiresAt) {
		c.lru.RemoveIf(sum, func(cur *Result) bool { return cur == r })
		return nil
	}
	return r
}

func (c *resultCache) add(sum *[32]byte, r *Result) { c.lru.Add(sum, r) }
