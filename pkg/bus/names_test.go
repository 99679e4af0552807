package bus_test

import (
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
