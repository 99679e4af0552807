package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A node is one sluice-gateway process of the run. The main node serves
// every scenario but those that need a node setting of their own (Redis
// over TLS, the access log): each of those gets a node started just before
// its scenario and stopped after it, so the main node's figures never carry
// a setting they do not measure.
type node struct {
	name string
	// redis is the node's redis: section (flow-style YAML), extra more
	// top-level YAML (e.g. an access_log: section).
	redis, extra string
	// tls adds an HTTPS traffic listener with the run's certificate.
	tls bool

	listen, tlsListen, ops int // ports, chosen when the node is planned
	url, tlsURL, opsURL    string
	proc                   *process
}

// planNode picks the ports of a node, so its scenarios' URLs are known
// before it starts.
func (r *run) planNode(name, redisYAML, extra string, tls bool) (*node, error) {
	n := &node{name: name, redis: redisYAML, extra: extra, tls: tls}
	ports := []*int{&n.listen, &n.ops}
	if tls {
		ports = append(ports, &n.tlsListen)
	}
	for _, p := range ports {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	n.url = "http://127.0.0.1:" + strconv.Itoa(n.listen)
	n.opsURL = "http://127.0.0.1:" + strconv.Itoa(n.ops)
	if tls {
		n.tlsURL = "https://127.0.0.1:" + strconv.Itoa(n.tlsListen)
	}
	return n, nil
}

// config is the node's YAML configuration file.
func (n *node) config(natsURL string, c *certs) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by sluice-bench.
node_id: %s
listen: "127.0.0.1:%d"
ops_listen: "127.0.0.1:%d"
redis: %s
nats: {url: "%s"}
log: {level: warn, format: json}
`, n.name, n.listen, n.ops, n.redis, natsURL)
	if n.tls {
		fmt.Fprintf(&b, "tls:\n  listen: \"127.0.0.1:%d\"\n  certificates:\n    - {cert_file: %q, key_file: %q}\n",
			n.tlsListen, c.CertFile, c.KeyFile)
	}
	b.WriteString(n.extra)
	return b.String()
}

// startNode runs the node's sluice-gateway against the harness's Redis and
// NATS and waits until it is ready.
func (r *run) startNode(ctx context.Context, n *node) error {
	if _, err := os.Stat(r.opt.Gateway); err != nil {
		return fmt.Errorf("%s is not built (make build)", r.opt.Gateway)
	}
	cfgPath := filepath.Join(r.opt.OutDir, n.name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(n.config(r.natsURL, r.certs)), 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(r.opt.OutDir, n.name+".log")
	// Profiling through the environment: a gateway without the setting
	// ignores the variable, where its strict YAML would refuse the field.
	p, err := startProcess(n.name, logPath, []string{"SLUICE_PROFILING=true"}, r.opt.Gateway, "--config", cfgPath)
	if err != nil {
		return err
	}
	n.proc = p
	ready := n.opsURL + "/ready"
	err = poll(ctx, 30*time.Second, func() error {
		if p.exited() {
			return fmt.Errorf("sluice-gateway exited (see %s)", logPath)
		}
		code, _, err := get(ready, nil)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("%s answered %d", ready, code)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gateway %s not ready: %w", n.name, err)
	}
	fmt.Fprintf(r.out, "gateway %s ready on %s (log %s)\n", n.name, n.url, logPath)
	return nil
}

// stop ends the node's process, if it runs.
func (n *node) stop() {
	if n != nil && n.proc != nil {
		n.proc.stop()
		n.proc = nil
	}
}

// process is the node's gateway process, nil when it does not run.
func (n *node) process() *process {
	if n == nil {
		return nil
	}
	return n.proc
}
