package bus_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/bus"
)

// Every subject of an environment starts with its namespace; the default
// namespace keeps the names subscribers have always used.
func TestNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		names               bus.Names
		ns, stream, durable string
	}{
		{bus.Names{}, "sluice", "SLUICE_USAGE", "sluice-analytics"},
		{bus.NewNames("sluice"), "sluice", "SLUICE_USAGE", "sluice-analytics"},
		{bus.NewNames("staging"), "staging", "STAGING_USAGE", "staging-analytics"},
		{bus.NewNames("prod-eu_1"), "prod-eu_1", "PROD-EU_1_USAGE", "prod-eu_1-analytics"},
	}
	for _, tt := range tests {
		t.Run(tt.ns, func(t *testing.T) {
			t.Parallel()
			n := tt.names
			for got, want := range map[string]string{
				n.UsageSubject("orders"):  tt.ns + ".usage.orders",
				n.UsagePrefix():           tt.ns + ".usage.",
				n.UsageWildcard():         tt.ns + ".usage.>",
				n.SyncSubject("api"):      tt.ns + ".sync.api",
				n.SyncWildcard():          tt.ns + ".sync.>",
				n.NodeSubject("gw-1"):     tt.ns + ".nodes.gw-1",
				n.NodesPrefix():           tt.ns + ".nodes.",
				n.NodesWildcard():         tt.ns + ".nodes.>",
				n.RollupSubject("orders"): tt.ns + ".rollup.orders",
				n.RollupWildcard():        tt.ns + ".rollup.>",
				n.UsageStream():           tt.stream,
				n.AnalyticsDurable():      tt.durable,
			} {
				if got != want {
					t.Errorf("%q, want %q", got, want)
				}
			}
			cfg := bus.StreamOptions{}.Config(n)
			if cfg.Name != tt.stream || len(cfg.Subjects) != 1 || cfg.Subjects[0] != tt.ns+".usage.>" {
				t.Errorf("stream config %s %v", cfg.Name, cfg.Subjects)
			}
		})
	}
}

// docs/usage-events.md, a public contract, names the subjects and the
// stream as Names builds them, in the default namespace and in "staging".
func TestUsageEventsDocNames(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "usage-events.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []bus.Names{{}, bus.NewNames("staging")} {
		for _, want := range []string{
			"`" + n.UsageSubject("<api-id>") + "`", "`" + n.RollupSubject("<api-id>") + "`",
			"`" + n.UsageStream() + "`",
		} {
			if !strings.Contains(string(doc), want) {
				t.Errorf("docs/usage-events.md does not name %s", want)
			}
		}
	}
	for _, want := range []string{"`<ns>.usage.<api-id>`", "`<ns>.rollup.<api-id>`", "`<NS>_USAGE`", "`<ns>.usage.>`"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/usage-events.md does not name %s", want)
		}
	}
}
