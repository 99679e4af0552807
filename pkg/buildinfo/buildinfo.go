// Package buildinfo is what a Sluice binary knows about its own build: the
// version, commit and build date stamped by the Makefile through -ldflags
// (-X github.com/sluicegw/sluice/pkg/buildinfo.Version=...), falling back to
// what the Go toolchain recorded (module version, VCS revision and time)
// when a binary was built without them.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamped at build time; empty when the build did not set them.
var (
	Version string
	Commit  string
	Date    string
)

// Info describes one build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
}

// Get returns the build's info: stamped values first, then the toolchain's
// build information, then "unknown".
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		fill(&i, bi)
	}
	for _, f := range []*string{&i.Version, &i.Commit, &i.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return i
}

// fill completes the fields i lacks from the toolchain's build information.
func fill(i *Info, bi *debug.BuildInfo) {
	if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		i.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && i.Commit == "":
			i.Commit = s.Value
		case s.Key == "vcs.time" && i.Date == "":
			i.Date = s.Value
		}
	}
}

// String is the line a binary prints for --version.
func (i Info) String(binary string) string {
	return fmt.Sprintf("%s %s (commit %s, built %s, %s)", binary, i.Version, i.Commit, i.Date, i.GoVersion)
}

// Collector exports sluice_build_info{version,commit,go_version} = 1, the
// usual way to chart which versions run where.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_build_info",
		Help: "Build of this process: always 1, labelled with its version, commit and Go version.",
	}, []string{"version", "commit", "go_version"})
	g.WithLabelValues(i.Version, i.Commit, i.GoVersion).Set(1)
	return g
}
