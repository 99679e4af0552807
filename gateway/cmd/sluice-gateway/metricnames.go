package main

import (
	"regexp"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// namedRegistry is the node's registry, remembering the name of every
// metric registered: a vector no request has touched yet exports nothing,
// but its name is known from registration (the dashboard test checks the
// queries of deployments/grafana against them).
type namedRegistry struct {
	*prometheus.Registry
	names map[string]bool
}

func newNamedRegistry() *namedRegistry {
	return &namedRegistry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Register registers c and remembers the names it describes.
func (r *namedRegistry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

// MustRegister registers every collector, panicking on a conflict (a
// programming error: metric names are fixed).
func (r *namedRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// MetricNames lists the names of the metrics registered, sorted.
func (r *namedRegistry) MetricNames() []string {
	out := make([]string, 0, len(r.names))
	for n := range r.names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
