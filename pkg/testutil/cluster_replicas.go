package testutil

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedisClusterReplicas starts a Redis Cluster of three primaries with
// replicas replicas each (so 3×(1+replicas) redis-server processes on free
// loopback ports), created by `redis-cli --cluster create
// --cluster-replicas`, and waits until every node reports
// cluster_state:ok and every replica is in sync. nodeTimeout is the
// cluster-node-timeout: how long a silent primary has before its replica
// is promoted. Everything is stopped when the test ends; the test is
// skipped when redis-cli is not installed.
func StartRedisClusterReplicas(t testing.TB, replicas int, nodeTimeout time.Duration) *RedisCluster {
	t.Helper()
	return StartRedisClusterConf(t, replicas, "", nodeTimeout)
}

// StartRedisClusterConf is StartRedisClusterReplicas with every node
// started from the configuration file conf (a deployment's redis.conf)
// first: the helper's own settings (port, cluster bus port, bind address,
// folders, no RDB snapshots, protected mode off) override the file's, and
// so does nodeTimeout unless it is 0.
func StartRedisClusterConf(t testing.TB, replicas int, conf string, nodeTimeout time.Duration) *RedisCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found on PATH: install it (apt-get install -y redis-server)")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found on PATH (it creates the cluster): install redis-tools")
	}
	c := &RedisCluster{nodeTimeout: nodeTimeout, conf: conf}
	t.Cleanup(c.kill)
	for i := 0; i < clusterSize*(1+replicas); i++ {
		n := &clusterNode{dir: t.TempDir()}
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			n.port, n.busPort = FreePort(t), FreePort(t)
			if n.port == n.busPort {
				continue
			}
			if err = c.startNode(n); err == nil {
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
	args := append(c.Addrs(), "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"--cluster", "create"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	WaitFor(t, 30*time.Second, func() error {
		for i := range c.nodes {
			if err := c.NodeHealthy(i); err != nil {
				return err
			}
		}
		return nil
	})
	return c
}

func (c *RedisCluster) startNode(n *clusterNode) error {
	var lead []string
	extra := []string{"--cluster-port", strconv.Itoa(n.busPort), "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(n.dir, "nodes.conf")}
	if c.nodeTimeout > 0 {
		extra = append(extra, "--cluster-node-timeout", strconv.FormatInt(c.nodeTimeout.Milliseconds(), 10))
	}
	if c.conf != "" {
		lead = []string{c.conf}
	} else {
		extra = append(extra, "--appendonly", "no")
	}
	cmd, done, err := spawn(n.dir, n.port, lead, extra...)
	if err != nil {
		return err
	}
	n.cmd, n.done = cmd, done
	return nil
}

// NodeAddr is host:port of node i, in the order of Addrs.
func (c *RedisCluster) NodeAddr(i int) string { return c.nodes[i].addr() }

// NodeIndex is the index of the node at host:port addr, or -1.
func (c *RedisCluster) NodeIndex(addr string) int {
	for i, n := range c.nodes {
		if n.addr() == addr {
			return i
		}
	}
	return -1
}

// RestartNode starts node i again (after KillNode) on its port with its
// nodes.conf, so it rejoins the cluster; a primary whose replica was
// promoted meanwhile comes back as a replica of it.
func (c *RedisCluster) RestartNode(i int) error {
	n := c.nodes[i]
	if n.cmd != nil {
		return fmt.Errorf("node %s is running", n.addr())
	}
	return c.startNode(n)
}

// PauseNode freezes node i (SIGSTOP): its connections stay open and
// nothing is answered. ResumeNode undoes it.
func (c *RedisCluster) PauseNode(i int) { c.signalNode(i, syscall.SIGSTOP) }

// ResumeNode continues a paused node.
func (c *RedisCluster) ResumeNode(i int) { c.signalNode(i, syscall.SIGCONT) }

func (c *RedisCluster) signalNode(i int, sig syscall.Signal) {
	if n := c.nodes[i]; n.cmd != nil {
		_ = n.cmd.Process.Signal(sig)
	}
}

// NodeHealthy returns nil when node i answers, reports cluster_state:ok
// and, if it is a replica, has its link to its primary up.
func (c *RedisCluster) NodeHealthy(i int) error {
	n := c.nodes[i]
	if err := n.clusterOK(); err != nil {
		return err
	}
	role, err := c.NodeRole(i)
	if err != nil {
		return err
	}
	if role != "slave" {
		return nil
	}
	info, err := c.nodeInfo(i, "replication")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "master_link_status:up") {
		return fmt.Errorf("replica %s not in sync with its primary", n.addr())
	}
	return nil
}

// NodeRole is "master" or "slave", as node i reports itself.
func (c *RedisCluster) NodeRole(i int) (string, error) {
	info, err := c.nodeInfo(i, "replication")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("node %s reports no role", c.nodes[i].addr())
}

func (c *RedisCluster) nodeInfo(i int, section string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: c.nodes[i].addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return rdb.Info(ctx, section).Result()
}

// PrimaryFor returns the address of the primary serving key's hash slot,
// asked of the first node that answers (nodes may be down, which NodeFor
// does not allow).
func (c *RedisCluster) PrimaryFor(key string) (string, error) {
	var last error
	for _, n := range c.nodes {
		if n.cmd == nil {
			continue
		}
		addr, err := primaryFor(n.addr(), key)
		if err == nil {
			return addr, nil
		}
		last = err
	}
	return "", fmt.Errorf("no node answered for the slot of %q: %v", key, last)
}

func primaryFor(node, key string) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: node, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range shards {
		for _, r := range s.Slots {
			if int64(r.Start) > slot || slot > int64(r.End) {
				continue
			}
			for _, n := range s.Nodes {
				if n.Role == "master" && n.Health == "online" {
					return fmt.Sprintf("%s:%d", n.IP, n.Port), nil
				}
			}
		}
	}
	return "", fmt.Errorf("slot %d has no online primary", slot)
}
