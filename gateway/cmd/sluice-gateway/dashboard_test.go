package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/testutil"
)

var grafanaDir = filepath.Join("..", "..", "..", "deployments", "grafana")

var metricRef = regexp.MustCompile(`\bsluice_[a-z0-9_]+`)

// exported is every metric name the services export: the gateway's from
// its registry (every registered metric, touched or not), the syncer's and
// the analytics worker's from the lists their own metrics tests check
// against their /metrics.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	cfg := testConfig(t, "dash")
	n, err := newNode(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	names := map[string]bool{}
	for _, m := range n.reg.MetricNames() {
		names[m] = true
	}
	for _, svc := range []string{"syncer", "analytics"} {
		for _, m := range testutil.ReadNames(t, filepath.Join(grafanaDir, "exported", svc+".txt")) {
			names[m] = true
		}
	}
	return names
}

// unknownMetrics returns the sluice_* names expr queries that no service
// exports (a histogram's _bucket, _sum and _count name its family).
func unknownMetrics(expr string, names map[string]bool) []string {
	var bad []string
	for _, m := range metricRef.FindAllString(expr, -1) {
		ok := names[m]
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			ok = ok || strings.HasSuffix(m, suf) && names[strings.TrimSuffix(m, suf)]
		}
		if !ok {
			bad = append(bad, m)
		}
	}
	return bad
}

// dashboardExprs walks the dashboard JSON for its panels' queries (and
// its variables'), checking the structure Grafana needs on the way.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", path)
	}
	var exprs []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", path, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("%s: panel %d has no title or no query", path, p.ID)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s: panel %q has a query without refId or expr", path, p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	return exprs
}

// ruleExprs reads the alerting rules, checking every rule has a name, an
// expression, a valid for, a severity and a summary.
func ruleExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var exprs []string
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: a group without name or rules", path)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: rule %q without alert name or expr", path, r.Alert)
			}
			if _, err := time.ParseDuration(r.For); r.For != "" && err != nil {
				t.Errorf("%s: rule %s: for %q: %v", path, r.Alert, r.For, err)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %s needs labels.severity and annotations.summary", path, r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no rules", path)
	}
	return exprs
}

// TestDashboardAndRulesQueryExportedMetrics: every sluice_* metric the
// Grafana dashboard and the alert rules query is one a service exports; a
// misspelt or renamed metric fails here.
func TestDashboardAndRulesQueryExportedMetrics(t *testing.T) {
	t.Parallel()
	names := exported(t)
	files := map[string][]string{
		"sluice-dashboard.json": dashboardExprs(t, filepath.Join(grafanaDir, "sluice-dashboard.json")),
		"alerts.yaml":           ruleExprs(t, filepath.Join(grafanaDir, "alerts.yaml")),
	}
	for file, exprs := range files {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			n := 0
			for _, e := range exprs {
				n += len(metricRef.FindAllString(e, -1))
				if bad := unknownMetrics(e, names); len(bad) > 0 {
					t.Errorf("%s queries %v, exported by no service: %s", file, bad, e)
				}
			}
			if n == 0 {
				t.Fatalf("%s queries no sluice metric", file)
			}
		})
	}
}

func TestUnknownMetrics(t *testing.T) {
	t.Parallel()
	names := map[string]bool{"sluice_request_duration_seconds": true, "sluice_requests_total": true}
	tests := []struct {
		expr string
		bad  int
	}{
		{`rate(sluice_requests_total[5m])`, 0},
		{`histogram_quantile(0.9, rate(sluice_request_duration_seconds_bucket[5m]))`, 0},
		{`rate(sluice_request_duration_seconds_count[5m])`, 0},
		{`rate(sluice_request_total[5m])`, 1},
		{`sluice_nothing_bucket`, 1},
		{`sluice_requests_total / sluice_request_duration_secs_count`, 1},
	}
	for _, tc := range tests {
		if got := unknownMetrics(tc.expr, names); len(got) != tc.bad {
			t.Errorf("%s: unknown %v, want %d", tc.expr, got, tc.bad)
		}
	}
}
