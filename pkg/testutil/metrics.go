package testutil

import (
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
