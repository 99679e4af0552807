package testutil

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a Redis primary, one replica and one Redis Sentinel that
// monitors them under the name Master, owned by one test.
type Sentinel struct {
	Master           string
	Primary, Replica *Redis
	addr             string
	more             []string // further sentinels (StartSentinels)
}

// StartSentinel starts a primary, a replica of it and a sentinel (quorum
// 1) on free loopback ports, and returns once the sentinel knows the
// replica and the replica is in sync. Everything is stopped when the test
// ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	return StartSentinels(t, 1)
}

// Addrs are the sentinels' host:port.
func (s *Sentinel) Addrs() []string { return append([]string{s.addr}, s.more...) }

// Client returns a client of the sentinel itself, closed when the test ends.
func (s *Sentinel) Client(t testing.TB) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// PrimaryAddr asks the sentinel for the primary's current host:port.
func (s *Sentinel) PrimaryAddr(ctx context.Context, t testing.TB) (string, error) {
	a, err := s.Client(t).GetMasterAddrByName(ctx, s.Master).Result()
	if err != nil {
		return "", err
	}
	return a[0] + ":" + a[1], nil
}
