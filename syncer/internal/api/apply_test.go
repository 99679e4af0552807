package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func applyBody(prune, dryRun bool, apis, policies []string, extra ...string) string {
	parts := []string{`"apis":[` + strings.Join(apis, ",") + `]`, `"policies":[` + strings.Join(policies, ",") + `]`}
	if prune {
		parts = append(parts, `"prune":true`)
	}
	if dryRun {
		parts = append(parts, `"dry_run":true`)
	}
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

type applyResult struct {
	DryRun      bool  `json:"dry_run"`
	BaseVersion int64 `json:"base_version"`
	Version     int64 `json:"version"`
	Plan        struct {
		Actions []struct{ Op, Kind, ID, ETag string } `json:"actions"`
		Kept    int                                   `json:"kept"`
	} `json:"plan"`
}

func decodeApply(t *testing.T, r resp) applyResult {
	t.Helper()
	var out applyResult
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("apply response: %v: %s", err, r.body)
	}
	return out
}

func (e *env) version() int64 {
	e.t.Helper()
	v, err := e.store.Version(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// TestApplyIsOneWrite: a dry run writes nothing; an apply of several
// objects is one config version; applying again is a no-op; prune deletes
// in dependency order in the same version.
func TestApplyIsOneWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := applyBody(false, true, []string{apiJSON("orders", "/orders/"), apiJSON("catalog", "/catalog/")},
		[]string{policyJSON("gold", "orders", "catalog")})
	dry := decodeApply(t, e.must(200, "POST", "/v1/apply", body))
	if !dry.DryRun || len(dry.Plan.Actions) != 3 || e.version() != 0 {
		t.Fatalf("dry run: %+v, version %d", dry, e.version())
	}
	res := decodeApply(t, e.must(200, "POST", "/v1/apply", strings.Replace(body, `,"dry_run":true`, "", 1)))
	if res.Version != 1 || len(res.Plan.Actions) != 3 || e.version() != 1 {
		t.Fatalf("apply: %+v, stored version %d", res, e.version())
	}
	vers, err := e.store.ChangesSince(context.Background(), 0, 0)
	if err != nil || len(vers) != 1 || len(vers[0].Changes) != 3 {
		t.Fatalf("changelog %+v, %v", vers, err)
	}
	again := decodeApply(t, e.must(200, "POST", "/v1/apply", strings.Replace(body, `,"dry_run":true`, "", 1)))
	if len(again.Plan.Actions) != 0 || again.Version != 1 {
		t.Fatalf("second apply: %+v", again)
	}
	// Prune: the policy goes before the API it grants, in one version.
	pruned := decodeApply(t, e.must(200, "POST", "/v1/apply", applyBody(true, false, []string{apiJSON("orders", "/orders/")}, nil)))
	if pruned.Version != 2 || len(pruned.Plan.Actions) != 2 || pruned.Plan.Actions[0].Kind != "policy" || pruned.Plan.Actions[1].ETag == "" {
		t.Fatalf("prune: %+v", pruned)
	}
	e.must(404, "GET", "/v1/apis/catalog", "")
}

// TestApplyRefusesWithoutWriting: every refusal leaves the store as it
// was.
func TestApplyRefusesWithoutWriting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(200, "POST", "/v1/apply", applyBody(false, false, []string{apiJSON("orders", "/orders/")}, []string{policyJSON("gold", "orders")}))
	etag := e.must(200, "GET", "/v1/apis/orders", "").header.Get("ETag")
	cases := []struct {
		name, body string
		status     int
		fields     []string
	}{
		{"unknown field", `{"apis":[{"id":"x","listen_pth":"/x/"}]}`, 400, []string{"apis[0].listen_pth"}},
		{"invalid object", applyBody(false, false, []string{apiJSON("new", "/new/"), `{"id":"bad id","listen_path":"/b/"}`}, nil), 400, nil},
		{"dangling grant", applyBody(false, false, []string{apiJSON("new", "/new/")}, []string{policyJSON("p", "missing")}), 400, []string{"policies[0].access[0].api"}},
		{"route taken", applyBody(false, false, []string{apiJSON("new", "/orders/")}, nil), 400, nil},
		{"stale version", applyBody(false, false, []string{apiJSON("new", "/new/")}, nil, `"expect_version":7`), 412, nil},
		{"stale etag", applyBody(false, false, []string{apiJSON("new", "/new/")}, nil, `"if_match":{"api/orders":"\"0000\""}`), 412, []string{"if_match.api/orders"}},
		{"etag of a missing object", applyBody(false, false, []string{apiJSON("new", "/new/")}, nil, `"if_match":{"policy/nope":`+fmt.Sprintf("%q", etag)+`}`), 412, []string{"if_match.policy/nope"}},
		{"duplicate id", applyBody(false, false, []string{apiJSON("new", "/new/"), apiJSON("new", "/new2/")}, nil), 400, []string{"apis[1].id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.must(tc.status, "POST", "/v1/apply", tc.body)
			if tc.fields != nil {
				if got := r.fields(t); strings.Join(got, " ") != strings.Join(tc.fields, " ") {
					t.Errorf("fields %v, want %v: %s", got, tc.fields, r.body)
				}
			}
		})
	}
	if v := e.version(); v != 1 {
		t.Fatalf("refused applies wrote: version %d", v)
	}
	e.must(404, "GET", "/v1/apis/new", "")
	// The right preconditions pass.
	e.must(200, "POST", "/v1/apply", applyBody(false, false, []string{apiJSON("new", "/new/")}, nil, `"expect_version":1`, `"if_match":{"api/orders":`+fmt.Sprintf("%q", etag)+`}`))
}

// TestApplyRefusesAConcurrentChange: an object changed between the plan
// and the write fails the whole apply. The race is made certain by
// planning against a state the store no longer has: the plan's ETags are
// those of the read, the write checks them inside the script.
func TestApplyRefusesAConcurrentChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(200, "POST", "/v1/apply", applyBody(false, false, []string{apiJSON("orders", "/orders/"), apiJSON("catalog", "/catalog/")}, nil))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.do("PUT", "/v1/apis/catalog", strings.Replace(apiJSON("catalog", "/catalog/"), `"api_key"`, `"keyless"`, 1*(i%2)))
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	refused := 0
	for i := 0; time.Now().Before(deadline) && refused == 0 && i < 500; i++ {
		target := fmt.Sprintf("/orders-%d/", i)
		r := e.do("POST", "/v1/apply", applyBody(false, false, []string{apiJSON("orders", target), strings.Replace(apiJSON("catalog", "/catalog/"), "127.0.0.1:1", fmt.Sprintf("127.0.0.1:%d", 2+i), 1)}, nil))
		switch r.status {
		case 200:
		case 412:
			refused++
			// Nothing of this apply was written: orders keeps its old path.
			got := e.must(200, "GET", "/v1/apis/orders", "").json(t)
			if got["listen_path"] == target {
				t.Fatalf("a refused apply wrote orders: %v", got)
			}
		default:
			t.Fatalf("apply: %d %s", r.status, r.body)
		}
	}
	close(stop)
	<-done
	if refused == 0 {
		t.Skip("no apply raced with a concurrent write in the time given")
	}
}

func taggedAPI(id, listen, tag string) string {
	return strings.Replace(apiJSON(id, listen), `"id":`, `"tags":["`+tag+`"],"id":`, 1)
}

// TestApplySelectTag: with select_tag the apply plans and prunes only the
// objects of that tag; the others stay as they are.
func TestApplySelectTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(200, "POST", "/v1/apply", applyBody(false, false, []string{taggedAPI("a1", "/a1/", "team-a"), taggedAPI("a2", "/a2/", "team-a"), taggedAPI("b1", "/b1/", "team-b"), apiJSON("free", "/free/")}, nil))
	// team-a now wants only a1, moved; prune removes a2 and nothing else.
	res := decodeApply(t, e.must(200, "POST", "/v1/apply", applyBody(true, false, []string{taggedAPI("a1", "/a1-new/", "team-a")}, nil, `"select_tag":"team-a"`)))
	if len(res.Plan.Actions) != 2 || res.Plan.Actions[0].Op != "update" || res.Plan.Actions[1].Op != "delete" || res.Plan.Actions[1].ID != "a2" {
		t.Fatalf("plan: %+v", res.Plan)
	}
	e.must(200, "GET", "/v1/apis/b1", "")
	e.must(200, "GET", "/v1/apis/free", "")
	e.must(404, "GET", "/v1/apis/a2", "")
	v := e.version()
	for name, tc := range map[string]struct {
		body   string
		fields []string
	}{
		"object without the tag":         {applyBody(false, false, []string{apiJSON("x", "/x/")}, nil, `"select_tag":"team-a"`), []string{"apis[0].tags"}},
		"id of another team's object":    {applyBody(false, false, []string{taggedAPI("b1", "/b1/", "team-a")}, nil, `"select_tag":"team-a"`), []string{"apis[0].id"}},
		"clash with another team's path": {applyBody(false, false, []string{taggedAPI("a3", "/b1/", "team-a")}, nil, `"select_tag":"team-a"`), []string{"apis[0].listen_path"}},
		"bad tag":                        {applyBody(false, false, nil, nil, `"select_tag":"Team A"`), []string{"select_tag"}},
	} {
		r := e.must(400, "POST", "/v1/apply", tc.body)
		if got := r.fields(t); strings.Join(got, " ") != strings.Join(tc.fields, " ") {
			t.Errorf("%s: fields %v, want %v: %s", name, got, tc.fields, r.body)
		}
	}
	if e.version() != v {
		t.Fatalf("refused selections wrote")
	}
}

func FuzzApply(f *testing.F) {
	fuzzWrite(f, "POST", "/v1/apply", applyBody(false, true, []string{apiJSON("a", "/a/")}, []string{policyJSON("p", "a")}),
		applyBody(true, true, nil, nil), applyBody(false, true, []string{apiJSON("fz", "/fz/")}, nil, `"select_tag":"t"`),
		`{"apis":[{"id":"x"}],"if_match":{"api/fz":"\"00\"","nope":""},"expect_version":-1,"dry_run":true}`,
		`{"apis":null,"policies":[null],"dry_run":true}`, `{"select_tag":"","prune":"yes"}`, `[]`)
}
