package testutil

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSize is how many primaries StartRedisCluster runs (no replicas):
// the fewest redis-cli --cluster create accepts.
const clusterSize = 3

// RedisCluster is a Redis Cluster of three primaries, each a redis-server
// process owned by one test (or package).
type RedisCluster struct {
	nodes       []*clusterNode
	nodeTimeout time.Duration // cluster-node-timeout of StartRedisClusterReplicas
	conf        string        // configuration file of StartRedisClusterConf
}

type clusterNode struct {
	port, busPort int
	tlsPort       int      // StartRedisClusterTLS: the node's TLS port
	tlsArgs       []string // StartRedisClusterTLS: the TLS settings
	dir           string
	cmd           *exec.Cmd
	done          chan struct{}
}

// StartRedisCluster starts three redis-server processes with cluster mode on
// free loopback ports (each with its own free cluster bus port, set with
// cluster-port, and its own temporary folder), joins them with
// `redis-cli --cluster create` (the 16384 slots split in three, no replicas)
// and waits until every node reports cluster_state:ok. Everything is stopped
// when the test ends. The test is skipped when redis-cli is not installed.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	return startRedisCluster(t, nil, nil)
}

// StartRedisClusterTLS starts a cluster as StartRedisCluster does, each
// node also listening on a TLS port (TLSAddrs) with a certificate of ca and
// requiring client certificates of ca; the cluster bus runs over TLS too
// (tls-cluster), so a TLS client is told the nodes' TLS ports. The plain
// ports stay open for the test's own setup (Addrs, Client, NodeFor).
func StartRedisClusterTLS(t testing.TB, ca *CA) *RedisCluster {
	t.Helper()
	srv, cli, peer := ca.Server(t), ca.Client(t, "redis-cli"), ca.Client(t, "cluster-bus")
	// The cluster is created over TLS: the nodes meet on their TLS ports.
	create := []string{"--tls", "--cacert", ca.File, "--cert", cli.CertFile, "--key", cli.KeyFile}
	return startRedisCluster(t, create, func(n *clusterNode) {
		n.tlsPort = FreePort(t)
		n.tlsArgs = []string{"--tls-port", strconv.Itoa(n.tlsPort), "--tls-cluster", "yes",
			"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile,
			// A node dials its peers' bus with a client certificate.
			"--tls-client-cert-file", peer.CertFile, "--tls-client-key-file", peer.KeyFile,
			"--tls-ca-cert-file", ca.File, "--tls-auth-clients", "yes"}
	})
}

// TLSAddrs is host:port of every node's TLS port (StartRedisClusterTLS).
func (c *RedisCluster) TLSAddrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(n.tlsPort)
	}
	return addrs
}

func startRedisCluster(t testing.TB, tlsCreate []string, setup func(*clusterNode)) *RedisCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found on PATH: install it (apt-get install -y redis-server)")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found on PATH (it creates the cluster): install redis-tools")
	}
	c := &RedisCluster{}
	t.Cleanup(c.kill)
	for i := 0; i < clusterSize; i++ {
		n := &clusterNode{dir: t.TempDir()}
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			n.port, n.busPort = FreePort(t), FreePort(t)
			if setup != nil {
				setup(n)
			}
			if n.port == n.busPort {
				continue
			}
			if err = n.start(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("start cluster node: %v", err)
		}
		c.nodes = append(c.nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := c.Addrs()
	if tlsCreate != nil {
		addrs = c.TLSAddrs()
	}
	args := append(append(tlsCreate, "--cluster", "create"), addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	WaitFor(t, 20*time.Second, func() error {
		for _, n := range c.nodes {
			if err := n.clusterOK(); err != nil {
				return err
			}
		}
		return nil
	})
	return c
}

// Addrs is host:port of every node, the seed addresses of a cluster client.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// Client returns a new cluster client seeded with every node, closed when
// the test ends.
func (c *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// NodeFor returns the address of the primary serving key's hash slot, asked
// of the cluster itself (CLUSTER KEYSLOT, CLUSTER SLOTS): tests use it to
// check that the keys they pick really live on different nodes.
func (c *RedisCluster) NodeFor(t testing.TB, key string) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: c.nodes[0].addr()})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatalf("cluster keyslot %q: %v", key, err)
	}
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatalf("cluster shards: %v", err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start > slot || slot > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role == "master" {
					return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
				}
			}
		}
	}
	t.Fatalf("slot %d of %q is served by no node", slot, key)
	return ""
}

// KillNode kills node i (0-2) at once, as a crashed primary.
func (c *RedisCluster) KillNode(i int) {
	n := c.nodes[i]
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		<-n.done
		n.cmd = nil
	}
}

func (n *clusterNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

func (n *clusterNode) start() error {
	args := append([]string{"--cluster-port", strconv.Itoa(n.busPort), "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
		"--cluster-node-timeout", "5000", "--appendonly", "no"}, n.tlsArgs...)
	cmd, done, err := spawnRedis(n.dir, n.port, args...)
	if err != nil {
		return err
	}
	n.cmd, n.done = cmd, done
	return nil
}

// clusterOK returns nil once the node reports cluster_state:ok.
func (n *clusterNode) clusterOK() error {
	c := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster info on %s: %w", n.addr(), err)
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return fmt.Errorf("node %s: cluster not ok yet", n.addr())
	}
	return nil
}

func (c *RedisCluster) kill() {
	for _, n := range c.nodes {
		if n.cmd != nil {
			_ = n.cmd.Process.Kill()
			<-n.done
			n.cmd = nil
		}
	}
}
