package model

import (
	"strings"
	"testing"
	"time"
)

func TestLimitByAndScopeValidation(t *testing.T) {
	t.Parallel()
	lim := func(mut func(*Limit)) *Limit {
		l := &Limit{Rate: 1, Per: Duration(time.Second)}
		mut(l)
		return l
	}
	api := func(l *Limit) API {
		return API{ID: "a", ListenPath: "/a/", Upstream: Upstream{Targets: []string{"http://10.0.0.1"}}, Auth: Auth{Mode: AuthKeyless}, RateLimit: l}
	}
	tests := []struct {
		name string
		errs func() string
		want string // "" = valid
	}{
		{"client ip and header", func() string {
			a := api(lim(func(l *Limit) { l.LimitBy = []string{"client_ip", "header:X-Tenant"}; l.OnMissing = "shared" }))
			return a.Validate().Error()
		}, ""},
		{"key on a keyless API", func() string {
			a := api(lim(func(l *Limit) { l.LimitBy = []string{"key"} }))
			return a.Validate().Error()
		}, "no key to count by"},
		{"claim without jwt", func() string {
			a := api(lim(func(l *Limit) { l.LimitBy = []string{"claim:tenant"} }))
			return a.Validate().Error()
		}, "no claim to count by"},
		{"reserve over the burst", func() string {
			a := api(lim(func(l *Limit) {
				l.Rate = 100
				l.Units = &Units{From: UnitsResponseJSON, Path: "usage.total_tokens", Reserve: 101}
			}))
			return a.Validate().Error()
		}, "units.reserve"},
		{"units ok", func() string {
			a := api(lim(func(l *Limit) {
				l.Rate = 100
				l.Units = &Units{From: UnitsRequestHeader, Header: "X-Cost", Max: 100}
			}))
			return a.Validate().Error()
		}, ""},
		{"units from nowhere", func() string {
			a := api(lim(func(l *Limit) { l.Units = &Units{From: "body"} }))
			return a.Validate().Error()
		}, "rate_limit.units.from"},
		{"unknown limit_by", func() string {
			a := api(lim(func(l *Limit) { l.LimitBy = []string{"ip"} }))
			return a.Validate().Error()
		}, "rate_limit.limit_by[0]"},
		{"bad header name", func() string {
			a := api(lim(func(l *Limit) { l.LimitBy = []string{"header:X Tenant"} }))
			return a.Validate().Error()
		}, "rate_limit.limit_by[0]"},
		{"named twice", func() string {
			a := api(lim(func(l *Limit) { l.LimitBy = []string{"header:A", "header:a"} }))
			return a.Validate().Error()
		}, "named twice"},
		{"on_missing without limit_by", func() string {
			a := api(lim(func(l *Limit) { l.OnMissing = "shared" }))
			return a.Validate().Error()
		}, "rate_limit.on_missing"},
		{"scope on an API limit", func() string {
			a := api(lim(func(l *Limit) { l.Scope = ScopeKey }))
			return a.Validate().Error()
		}, "rate_limit.scope"},
		{"limit_by on a policy", func() string {
			p := Policy{ID: "p", RateLimit: lim(func(l *Limit) { l.LimitBy = []string{"client_ip"} })}
			return p.Validate().Error()
		}, "rate_limit.limit_by"},
		{"scope key lease", func() string {
			p := Policy{ID: "p", RateLimit: lim(func(l *Limit) { l.Scope = ScopeKey; l.Mode = LimitLease })}
			return p.Validate().Error()
		}, "rate_limit.mode"},
		{"quota scope", func() string {
			p := Policy{ID: "p", Quota: &Quota{Max: 1, Renewal: Duration(time.Hour), Scope: "everywhere"}}
			return p.Validate().Error()
		}, "quota.scope"},
		{"scope key ok", func() string {
			p := Policy{ID: "p", RateLimit: lim(func(l *Limit) { l.Scope = ScopeKey }), Quota: &Quota{Max: 1, Renewal: Duration(time.Hour), Scope: ScopeKey}}
			return p.Validate().Error()
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.errs()
			if tt.want == "" && got != "" {
				t.Fatalf("refused: %s", got)
			}
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("errors %q, want one naming %s", got, tt.want)
			}
		})
	}
}
