package testutil

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	s := &Sentinel{Master: "sluice", Primary: StartRedis(t)}
	s.Replica = startRedis(t, func(r *Redis) {
		r.extra = []string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.port)}
	})
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\nsentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 5000\n", s.Master, s.Primary.port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		cmd, done, err := spawn(dir, port, []string{conf, "--sentinel"})
		if lastErr = err; err != nil {
			continue
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		s.addr = "127.0.0.1:" + strconv.Itoa(port)
		break
	}
	if s.addr == "" {
		t.Fatalf("start redis sentinel: %v", lastErr)
	}
	sc, rc := s.Client(t), s.Replica.Client(t)
	WaitFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		reps, err := sc.Replicas(ctx, s.Master).Result()
		if err != nil {
			return err
		}
		if len(reps) != 1 || reps[0]["flags"] != "slave" {
			return fmt.Errorf("sentinel sees replicas %v", reps)
		}
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica not in sync")
		}
		return nil
	})
	return s
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
