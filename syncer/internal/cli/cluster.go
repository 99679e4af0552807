package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"
)

// node is one entry of GET /v1/nodes.
type node struct {
	ID            string    `json:"id" yaml:"id"`
	Address       string    `json:"address" yaml:"address"`
	Version       string    `json:"version" yaml:"version"`
	ConfigVersion int64     `json:"config_version" yaml:"config_version"`
	LastHeartbeat time.Time `json:"last_heartbeat" yaml:"last_heartbeat"`
	Live          bool      `json:"live" yaml:"live"`
}

func cmdNodes(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("nodes", "", "List the gateway nodes the syncer has heard from: address, Sluice version, the config version each has applied, and the last heartbeat.")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if _, err := c.getJSON(ctx, "/v1/nodes", &page); err != nil {
		return err
	}
	if r.g.output == "json" {
		if page.Items == nil {
			page.Items = []json.RawMessage{}
		}
		return printJSON(r.env.Stdout, page.Items)
	}
	if r.g.output == "yaml" {
		// From the JSON itself, so YAML shows every field JSON does.
		items := make([]any, len(page.Items))
		for i, raw := range page.Items {
			if err := json.Unmarshal(raw, &items[i]); err != nil {
				return fmt.Errorf("decode node: %w", err)
			}
		}
		return printYAML(r.env.Stdout, items)
	}
	nodes := make([]node, len(page.Items))
	for i, raw := range page.Items {
		if err := json.Unmarshal(raw, &nodes[i]); err != nil {
			return fmt.Errorf("decode node: %w", err)
		}
	}
	now := r.env.Now()
	rows := make([][]string, len(nodes))
	for i, n := range nodes {
		hb := ""
		if !n.LastHeartbeat.IsZero() {
			hb = n.LastHeartbeat.UTC().Format(time.RFC3339) + " (" + now.Sub(n.LastHeartbeat).Round(time.Second).String() + " ago)"
		}
		rows[i] = []string{n.ID, n.Address, n.Version, strconv.FormatInt(n.ConfigVersion, 10), hb, yesNo(n.Live)}
	}
	return table(r.env.Stdout, []string{"ID", "ADDRESS", "VERSION", "CONFIG VERSION", "LAST HEARTBEAT", "LIVE"}, rows)
}

// status is the answer of GET /v1/status.
type status struct {
	ConfigVersion  int64 `json:"config_version" yaml:"config_version"`
	NodesLive      int   `json:"nodes_live" yaml:"nodes_live"`
	NodesConverged int   `json:"nodes_converged" yaml:"nodes_converged"`
	Converged      bool  `json:"converged" yaml:"converged"`
}

func cmdStatus(ctx context.Context, r *run, args []string) error {
	fs := r.flagSet("status", "", "Show the current config version and whether every live gateway node has applied it.")
	if _, err := r.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := r.admin()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if _, err := c.getJSON(ctx, "/v1/status", &raw); err != nil {
		return err
	}
	if r.g.output == "json" {
		return printJSON(r.env.Stdout, raw)
	}
	var st status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	if r.g.output == "yaml" {
		return printYAML(r.env.Stdout, st)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "config version:\t%d\n", st.ConfigVersion)
	fmt.Fprintf(tw, "nodes live:\t%d\n", st.NodesLive)
	fmt.Fprintf(tw, "nodes converged:\t%d\n", st.NodesConverged)
	fmt.Fprintf(tw, "converged:\t%s\n", yesNo(st.Converged))
	return tw.Flush()
}
