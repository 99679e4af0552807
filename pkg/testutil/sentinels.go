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

// StartSentinels starts a primary, a replica of it and n sentinels that
// monitor them with a majority quorum (n/2+1), on free loopback ports, and
// returns once every sentinel knows the replica and the other sentinels
// and the replica is in sync. A sentinel calls the primary down after 1s
// without an answer. Everything is stopped when the test ends.
func StartSentinels(t testing.TB, n int) *Sentinel {
	t.Helper()
	s := &Sentinel{Master: "sluice", Primary: StartRedis(t)}
	s.Replica = startRedis(t, func(r *Redis) {
		r.extra = []string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.port)}
	})
	for i := 0; i < n; i++ {
		addr, err := s.startSentinel(t, n/2+1)
		if err != nil {
			t.Fatalf("start redis sentinel: %v", err)
		}
		if i == 0 {
			s.addr = addr
		} else {
			s.more = append(s.more, addr)
		}
	}
	rc := s.Replica.Client(t)
	WaitFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, addr := range s.Addrs() {
			sc := sentinelClient(addr)
			reps, err := sc.Replicas(ctx, s.Master).Result()
			if err == nil && (len(reps) != 1 || reps[0]["flags"] != "slave") {
				err = fmt.Errorf("sentinel %s sees replicas %v", addr, reps)
			}
			var others []map[string]string
			if err == nil {
				others, err = sc.Sentinels(ctx, s.Master).Result()
			}
			if err == nil && len(others) != n-1 {
				err = fmt.Errorf("sentinel %s knows %d other sentinels, want %d", addr, len(others), n-1)
			}
			_ = sc.Close()
			if err != nil {
				return err
			}
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

func (s *Sentinel) startSentinel(t testing.TB, quorum int) (string, error) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d\nsentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 5000\n", s.Master, s.Primary.port, quorum)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		cmd, done, err := spawn(dir, port, []string{conf, "--sentinel"})
		if lastErr = err; err != nil {
			continue
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		return "127.0.0.1:" + strconv.Itoa(port), nil
	}
	return "", lastErr
}

// Kill kills the server at once (SIGKILL), as a crash would; Start brings
// it back with the data it had written to its append-only file.
func (r *Redis) Kill() { r.kill() }

// Role is "master" or "slave", as the server reports itself.
func (r *Redis) Role(ctx context.Context) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("redis %s reports no role", r.Addr())
}

func sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
}
