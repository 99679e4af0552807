package api_test

import (
	"reflect"
	"strings"
	"testing"
)

// TestOrgCRUDAndReferences: orgs are written like policies (create, get
// with ETag, replace with If-Match, list, audit, announced version); a key
// naming an unknown org gets 400 naming the field "org"; bad org bodies
// get 400 naming each field; an org a key names cannot be deleted (409)
// until the key moves to another org, and the move is counted inside the
// write.
func TestOrgCRUDAndReferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("orders", "/orders/"))
	e.must(201, "POST", "/v1/policies", policyJSON("gold", "orders"))

	bad := e.must(400, "POST", "/v1/orgs", `{"id":"-bad","rate_limit":{"rate":0,"per":"1s","mode":"lease","scope":"key","limit_by":["client_ip"]},"quota":{"max":10,"renewal":"1h","scope":"api","units":{"from":"fixed","cost":20}}}`)
	want := []string{"id", "rate_limit.rate", "rate_limit.limit_by", "rate_limit.scope", "rate_limit.mode", "quota.units.cost", "quota.scope"}
	got := bad.fields(t)
	for _, f := range want {
		found := false
		for _, g := range got {
			found = found || g == f
		}
		if !found {
			t.Errorf("problem with %s not reported: %v (%s)", f, got, bad.body)
		}
	}
	e.must(400, "POST", "/v1/orgs", `{"id":"acme","unknown":1}`)

	created := e.must(201, "POST", "/v1/orgs", `{"id":"acme","rate_limit":{"rate":100,"per":"1s"},"quota":{"max":1000,"renewal":"24h"}}`)
	if created.header.Get("Sluice-Config-Version") == "" || created.header.Get("Location") != "/v1/orgs/acme" {
		t.Fatalf("create headers: %v", created.header)
	}
	e.must(409, "POST", "/v1/orgs", `{"id":"acme"}`)
	etag := e.must(200, "GET", "/v1/orgs/acme", "").header.Get("ETag")
	e.must(412, "PUT", "/v1/orgs/acme", `{"quota":{"max":5,"renewal":"1h"}}`, `If-Match: "0000"`)
	e.must(200, "PUT", "/v1/orgs/acme", `{"quota":{"max":5,"renewal":"1h"}}`, "If-Match: "+etag)
	e.must(400, "PUT", "/v1/orgs/acme", `{"id":"other"}`)
	e.must(201, "PUT", "/v1/orgs/beta", `{"quota":{"max":5,"renewal":"1h"}}`)
	if items := e.must(200, "GET", "/v1/orgs", "").json(t)["items"].([]any); len(items) != 2 {
		t.Fatalf("list: %d orgs", len(items))
	}

	r := e.must(400, "POST", "/v1/keys", `{"id":"k1","policies":["gold"],"org":"ghost"}`)
	if got := r.fields(t); !reflect.DeepEqual(got, []string{"org"}) || !strings.Contains(string(r.body), `unknown org \"ghost\"`) {
		t.Fatalf("unknown org: %v %s", got, r.body)
	}
	if got := e.must(400, "POST", "/v1/keys", `{"id":"k1","policies":["gold"],"org":"a b"}`).fields(t); !reflect.DeepEqual(got, []string{"org"}) {
		t.Fatalf("bad org id: %v", got)
	}
	e.must(201, "POST", "/v1/keys", `{"id":"k1","policies":["gold"],"org":"acme"}`)
	e.must(201, "POST", "/v1/keys", `{"id":"k2","policies":["gold"],"org":"acme"}`)
	c := e.must(409, "DELETE", "/v1/orgs/acme", "")
	if !strings.Contains(string(c.body), "2 keys") {
		t.Fatalf("409 does not say how many keys name the org: %s", c.body)
	}
	e.must(200, "PUT", "/v1/keys/k1", `{"policies":["gold"],"org":"beta"}`)
	e.must(204, "DELETE", "/v1/keys/k2", "")
	e.must(204, "DELETE", "/v1/orgs/acme", "") // k1 moved, k2 deleted: no key names it
	e.must(409, "DELETE", "/v1/orgs/beta", "")
	e.must(404, "GET", "/v1/orgs/acme", "")
	if items := e.must(200, "GET", "/v1/audit?kind=org", "").json(t)["items"].([]any); len(items) < 4 {
		t.Fatalf("audit of orgs: %d entries", len(items))
	}
}

func FuzzCreateOrg(f *testing.F) {
	fuzzWrite(f, "POST", "/v1/orgs", `{"id":"o1","rate_limit":{"rate":5,"per":"1s"}}`, `{"id":"o2","quota":{"max":1,"renewal":"1h","units":{"from":"response_json","path":"usage.total_tokens","reserve":1}}}`,
		`{"id":"o3","rate_limit":{"rate":5,"per":"1s","mode":"lease"}}`, `{"id":"..","quota":null}`, `{"id":"o4","tags":["A"]}`, `[]`)
}

// TestApplyOrgs: POST /v1/apply creates, updates and (with prune) deletes
// orgs with the APIs and policies, in one version; an org a key names is
// not pruned (409, nothing written); a bad org is refused naming
// orgs[i] and the field.
func TestApplyOrgs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := `{"apis":[` + apiJSON("orders", "/orders/") + `],"policies":[` + policyJSON("gold", "orders") + `],` +
		`"orgs":[{"id":"acme","quota":{"max":100,"renewal":"1h"}},{"id":"beta"}]}`
	r := e.must(200, "POST", "/v1/apply", body)
	if !strings.Contains(string(r.body), `"kind":"org"`) {
		t.Fatalf("plan without orgs: %s", r.body)
	}
	if q := e.must(200, "GET", "/v1/orgs/acme", "").json(t)["quota"]; q == nil {
		t.Fatal("org acme not written")
	}
	e.must(201, "POST", "/v1/keys", `{"id":"k1","policies":["gold"],"org":"acme"}`)
	pruneAll := `{"apis":[` + apiJSON("orders", "/orders/") + `],"policies":[` + policyJSON("gold", "orders") + `],"orgs":[{"id":"beta","rate_limit":{"rate":5,"per":"1s"}}],"prune":true}`
	e.must(409, "POST", "/v1/apply", pruneAll)
	if b := e.must(200, "GET", "/v1/orgs/beta", "").json(t); b["rate_limit"] != nil {
		t.Fatal("a refused apply wrote beta's change")
	}
	e.must(200, "PUT", "/v1/keys/k1", `{"policies":["gold"]}`)
	r = e.must(200, "POST", "/v1/apply", pruneAll)
	if !strings.Contains(string(r.body), `"op":"delete","kind":"org","id":"acme"`) {
		t.Fatalf("plan does not delete acme: %s", r.body)
	}
	e.must(404, "GET", "/v1/orgs/acme", "")
	bad := e.must(400, "POST", "/v1/apply", `{"apis":[],"policies":[],"orgs":[{"id":"ok"},{"id":"ok","rate_limit":{"rate":1,"per":"1s","mode":"lease"}}]}`)
	got := bad.fields(t)
	if !reflect.DeepEqual(got, []string{"orgs[1].rate_limit.mode", "orgs[1].id"}) && !reflect.DeepEqual(got, []string{"orgs[1].id", "orgs[1].rate_limit.mode"}) {
		t.Fatalf("bad orgs: %v %s", got, bad.body)
	}
}
