package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/edgetls"
	"github.com/sluicegw/sluice/gateway/internal/settings"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// ownedFrames are the stack frames of goroutines a node starts: NATS
// client loops, the access log writer, the gateway's own loops, the Redis
// client's. None may outlive a failed construction or start.
var ownedFrames = []string{
	"github.com/nats-io/nats.go.",
	"github.com/sluicegw/sluice/gateway/internal/",
	"github.com/redis/go-redis/",
	"github.com/valyala/fasthttp.",
}

// ownGoroutines returns the stacks of every goroutine but the embedded
// NATS server's (it runs the test's server, whose streams the node may
// create).
func ownGoroutines() []string {
	var out []string
	for _, g := range stacks() {
		if !strings.Contains(g, "github.com/nats-io/nats-server/") {
			out = append(out, g)
		}
	}
	return out
}

func stacks() []string {
	buf := make([]byte, 1<<22)
	return strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
}

// leftovers returns the stacks of running goroutines holding an owned
// frame.
func leftovers() []string {
	var out []string
	for _, g := range stacks() {
		for _, f := range ownedFrames {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// redisClients returns the client connections Redis holds, except the
// one asking.
func redisClients(t *testing.T, r *testutil.Redis) ([]string, error) {
	rdb := r.Client(t)
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if !strings.Contains(line, " cmd=client|list") {
			out = append(out, line)
		}
	}
	return out, nil
}

// TestConstructionFailureReleasesEverything makes the node's construction
// fail at each step after the Redis client (which has connected to Redis
// by then), and its start fail at the operations listener after five
// components started, and proves nothing is left: Redis holds no
// connection of the node (CLIENT LIST), NATS no client, and no goroutine
// of the node, its NATS or Redis client or its access log is running,
// the count of goroutines (but the test NATS server's) back to where it
// was.
//
// Not parallel: it counts the process's goroutines, so it runs while no
// other test of this package does (sequential tests run before the
// parallel ones start).
func TestConstructionFailureReleasesEverything(t *testing.T) {
	r := testutil.StartRedis(t)
	nt := testutil.StartNATS(t)
	dir := t.TempDir()
	base := func(t *testing.T) settings.Config {
		cfg := testConfig(t, "leak-node")
		cfg.Redis.Addr = r.Addr()
		cfg.NATS.URL = nt.URL()
		cfg.AccessLog.Mode = "all"
		cfg.AccessLog.Path = filepath.Join(dir, "access.log")
		cfg.ShutdownTimeout = 5 * time.Second
		return cfg
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })
	cases := []struct {
		name    string
		set     func(*settings.Config)
		start   bool   // construction succeeds, Start fails
		wantErr string // names the step
	}{
		{"jwt provider refuses its options", func(c *settings.Config) { c.JWT.FetchTimeout = -time.Second }, false, "fetch_timeout"},
		{"nats unreachable", func(c *settings.Config) {
			c.NATS.URL = fmt.Sprintf("nats://127.0.0.1:%d", testutil.FreePort(t))
			c.NATS.RetryOnFailedConnect = false
			c.NATS.ConnectTimeout = time.Second
		}, false, "connect"},
		{"config sync refuses the node id", func(c *settings.Config) { c.NodeID = "bad.node" }, false, "node id"},
		{"usage publisher refuses its options", func(c *settings.Config) { c.Usage.BatchSize = -1 }, false, "batch_size"},
		{"server cannot read its certificate", func(c *settings.Config) {
			c.TLS.Listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			c.TLS.Certificates = edgetls.Certificates{{CertFile: filepath.Join(dir, "absent.pem"), KeyFile: filepath.Join(dir, "absent.key")}}
		}, false, "absent.pem"},
		{"ops listener address taken", func(c *settings.Config) { c.OpsListen = taken.Addr().String() }, true, "ops: listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// No collection while the case runs: a connection nobody
			// references is closed by its finalizer at the next GC, which
			// would hide the leak this test is looking for.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			before := len(ownGoroutines())
			if g := leftovers(); len(g) > 0 {
				t.Fatalf("goroutines left before the case:\n%s", strings.Join(g, "\n\n"))
			}
			cfg := base(t)
			tc.set(&cfg)
			n, err := newNode(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
			if tc.start {
				if err != nil {
					t.Fatalf("construction: %v", err)
				}
				// Built: Redis and NATS are connected, the access log runs.
				if c, _ := redisClients(t, r); len(c) == 0 {
					t.Fatal("the node holds no Redis connection: the case proves nothing")
				}
				if nt.Server().NumClients() == 0 {
					t.Fatal("the node holds no NATS connection: the case proves nothing")
				}
				err = n.Start(context.Background())
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if serr := n.Shutdown(ctx); serr != nil {
					t.Errorf("shutdown after a failed start: %v", serr)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
			}
			testutil.WaitFor(t, 10*time.Second, func() error {
				if c, err := redisClients(t, r); err != nil || len(c) > 0 {
					return fmt.Errorf("redis clients left: %v %q", err, c)
				}
				if c := nt.Server().NumClients(); c > 0 {
					return fmt.Errorf("%d NATS clients left", c)
				}
				if g := leftovers(); len(g) > 0 {
					return errors.New("goroutines left:\n" + strings.Join(g, "\n\n"))
				}
				if now := ownGoroutines(); len(now) > before {
					return fmt.Errorf("%d goroutines, %d before:\n%s", len(now), before, strings.Join(now, "\n\n"))
				}
				return nil
			})
		})
	}
}
