package testutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// LintMetrics fails t when the Prometheus text exposition body breaks the
// rules `promtool check metrics` applies (promtool runs the same linter):
// names, units, suffixes, help text and types.
func LintMetrics(t testing.TB, body string) {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// MetricFamilies returns the names of the metric families in a Prometheus
// text exposition body (from its "# TYPE" lines).
func MetricFamilies(body string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
		}
	}
	return names
}

// ReadNames reads a list of metric names, one a line ('#' starts a
// comment).
func ReadNames(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
			names = append(names, strings.TrimSpace(line))
		}
	}
	return names
}

// CheckExported fails t unless every name listed in the file at path is a
// metric family of the exposition body: the list a dashboard test trusts
// stays true to what the service exports.
func CheckExported(t testing.TB, body, path string) {
	t.Helper()
	have := MetricFamilies(body)
	names := ReadNames(t, path)
	if len(names) == 0 {
		t.Fatalf("%s lists no metric", path)
	}
	for _, n := range names {
		if !have[n] {
			t.Errorf("%s lists %s, which the service does not export", path, n)
		}
	}
}

// SumMetric sums the samples of the Prometheus metric name (every label
// set) in a text exposition body; found is false when there is none.
func SumMetric(body []byte, name string) (sum float64, found bool, err error) {
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric %s: %q: %w", name, line, err)
		}
		sum, found = sum+v, true
	}
	return sum, found, nil
}
