package api_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// applyConfigBody is n APIs and n policies; round moves every API and
// changes every policy, so each round updates all 2n objects.
func applyConfigBody(round, n int, dryRun bool) string {
	type req struct {
		APIs     []model.API    `json:"apis"`
		Policies []model.Policy `json:"policies"`
		DryRun   bool           `json:"dry_run"`
	}
	r := req{DryRun: dryRun}
	for i := range n {
		id := fmt.Sprintf("api-%04d", i)
		r.APIs = append(r.APIs, model.API{ID: id, ListenPath: fmt.Sprintf("/r%d/a%04d/", round, i),
			Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthAPIKey}})
		r.Policies = append(r.Policies, model.Policy{ID: fmt.Sprintf("pol-%04d", i), Access: []model.AccessRight{{API: id}},
			RateLimit: &model.Limit{Rate: int64(round + 1), Per: model.Duration(time.Second)}})
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// BenchmarkApply1000APIs1000Policies measures POST /v1/apply of 1,000 APIs
// and 1,000 policies, all changed: the plan (a dry run: read, validate,
// diff) and the apply (the same plus one atomic store write of 2,000
// changes and its announcement).
func BenchmarkApply1000APIs1000Policies(b *testing.B) {
	e := newEnv(b)
	const n = 1000
	e.must(200, "POST", "/v1/apply", applyConfigBody(0, n, false))
	var plan, apply time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dry, wet := applyConfigBody(i+1, n, true), applyConfigBody(i+1, n, false)
		t0 := time.Now()
		e.must(200, "POST", "/v1/apply", dry)
		t1 := time.Now()
		e.must(200, "POST", "/v1/apply", wet)
		plan, apply = plan+t1.Sub(t0), apply+time.Since(t1)
	}
	b.ReportMetric(float64(plan.Milliseconds())/float64(b.N), "plan-ms")
	b.ReportMetric(float64(apply.Milliseconds())/float64(b.N), "apply-ms")
}
