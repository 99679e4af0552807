package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStampedValuesWin(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = old[0], old[1], old[2] })
	Version, Commit, Date = "v1.2.3", "abc123", "2026-01-02T03:04:05Z"
	i := Get()
	if i.Version != "v1.2.3" || i.Commit != "abc123" || i.Date != "2026-01-02T03:04:05Z" {
		t.Fatalf("got %+v", i)
	}
	line := i.String("sluice-gateway")
	for _, want := range []string{"sluice-gateway v1.2.3", "commit abc123", "built 2026-01-02T03:04:05Z", "go1."} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}

func TestFillFromToolchain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Info
		bi   debug.BuildInfo
		want Info
	}{
		{"vcs settings fill the gaps", Info{},
			debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "deadbeef"}, {Key: "vcs.time", Value: "2026-11-30T00:00:00Z"}}},
			Info{Commit: "deadbeef", Date: "2026-11-30T00:00:00Z"}},
		{"module version used when not devel", Info{},
			debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}},
			Info{Version: "v0.9.0"}},
		{"stamped values kept", Info{Version: "v2", Commit: "c", Date: "d"},
			debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "x"}}},
			Info{Version: "v2", Commit: "c", Date: "d"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.in
			fill(&got, &tc.bi)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector())
	i := Get()
	want := `# HELP sluice_build_info Build of this process: always 1, labelled with its version, commit and Go version.
# TYPE sluice_build_info gauge
sluice_build_info{commit="` + i.Commit + `",go_version="` + i.GoVersion + `",version="` + i.Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_build_info"); err != nil {
		t.Fatal(err)
	}
}
