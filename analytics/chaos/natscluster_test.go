//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// natsTemplate is the node configuration the cluster is written from.
const natsTemplate = "../../deployments/nats/cluster-local.conf.tmpl"

// usageStream and usageConsumer are the analytics defaults.
const (
	usageStream   = "SLUICE_USAGE"
	usageConsumer = "sluice-analytics"
)

// natsNode is one nats-server process of the cluster.
type natsNode struct {
	*proc
	Name, StoreDir    string
	Port, ClusterPort int
	Routes            []int
}

// natsCluster is three nats-server processes joined by cluster routes.
type natsCluster struct {
	t     *testing.T
	nodes []*natsNode
	nc    *nats.Conn
	js    jetstream.JetStream
}

// startNATSCluster writes a configuration per node from natsTemplate,
// starts the three servers and waits until a client reaches JetStream.
func startNATSCluster(t *testing.T, bin string) *natsCluster {
	t.Helper()
	tmpl, err := template.ParseFiles(natsTemplate)
	if err != nil {
		t.Fatalf("nats template: %v", err)
	}
	c := &natsCluster{t: t}
	for i := range 3 {
		c.nodes = append(c.nodes, &natsNode{Name: "nats-" + strconv.Itoa(i+1), StoreDir: t.TempDir(),
			Port: testutil.FreePort(t), ClusterPort: testutil.FreePort(t)})
	}
	for _, n := range c.nodes {
		for _, o := range c.nodes {
			n.Routes = append(n.Routes, o.ClusterPort)
		}
		conf := filepath.Join(t.TempDir(), n.Name+".conf")
		f, err := os.Create(conf)
		if err != nil {
			t.Fatal(err)
		}
		err = tmpl.Execute(f, n)
		f.Close()
		if err != nil {
			t.Fatalf("write %s: %v", conf, err)
		}
		n.proc = startProc(t, n.Name, bin, nil, "-c", conf)
	}
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := c.js.AccountInfo(ctx)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		_ = info
		return nil
	})
	return c
}

// URL lists every node, the way the services are configured.
func (c *natsCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "nats://127.0.0.1:" + strconv.Itoa(n.Port)
	}
	return strings.Join(urls, ",")
}

// streamInfo is the usage stream's state as the cluster reports it.
func (c *natsCluster) streamInfo() (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, usageStream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

// consumerInfo is the state of the workers' shared consumer.
func (c *natsCluster) consumerInfo() (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, usageStream, usageConsumer)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// streamLeader is the node leading the usage stream, once the stream has
// a leader and every replica is current.
func (c *natsCluster) streamLeader() (*natsNode, error) {
	info, err := c.streamInfo()
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", usageStream)
	}
	if len(info.Cluster.Replicas)+1 != len(c.nodes) {
		return nil, fmt.Errorf("stream %s has %d replicas besides its leader, want %d", usageStream, len(info.Cluster.Replicas), len(c.nodes)-1)
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return nil, fmt.Errorf("stream %s: replica %s not current", usageStream, r.Name)
		}
	}
	for _, n := range c.nodes {
		if n.Name == info.Cluster.Leader {
			return n, nil
		}
	}
	return nil, fmt.Errorf("stream leader %q is none of the nodes", info.Cluster.Leader)
}
