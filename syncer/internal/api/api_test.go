package api_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestAPICRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.must(201, "POST", "/v1/apis", apiJSON("orders", "/orders/"))
	if r.header.Get("Location") != "/v1/apis/orders" || r.header.Get("ETag") == "" || r.header.Get("Sluice-Config-Version") != "1" {
		t.Fatalf("create headers: %v", r.header)
	}
	etag := r.header.Get("ETag")
	g := e.must(200, "GET", "/v1/apis/orders", "")
	if g.header.Get("ETag") != etag || g.json(t)["listen_path"] != "/orders/" {
		t.Fatalf("get: %v %s", g.header, g.body)
	}
	if c := e.must(409, "POST", "/v1/apis", apiJSON("orders", "/other/")); c.code(t) != "conflict" {
		t.Fatalf("duplicate create code %q", c.code(t))
	}
	// Update with the right ETag, then the stale one is refused.
	u := e.must(200, "PUT", "/v1/apis/orders", apiJSON("orders", "/orders/v2/"), "If-Match: "+etag)
	if u.header.Get("ETag") == etag {
		t.Fatal("ETag did not change on update")
	}
	if p := e.must(412, "PUT", "/v1/apis/orders", apiJSON("orders", "/orders/v3/"), "If-Match: "+etag); p.code(t) != "precondition_failed" {
		t.Fatalf("stale If-Match code %q", p.code(t))
	}
	e.must(412, "DELETE", "/v1/apis/orders", "", "If-Match: "+etag)
	// PUT without If-Match creates an absent API.
	e.must(201, "PUT", "/v1/apis/billing", `{"listen_path":"/billing/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"keyless"}}`)
	if got := len(e.must(200, "GET", "/v1/apis", "").json(t)["items"].([]any)); got != 2 {
		t.Fatalf("list has %d items, want 2", got)
	}
	e.must(204, "DELETE", "/v1/apis/orders", "")
	if nf := e.must(404, "GET", "/v1/apis/orders", ""); nf.code(t) != "not_found" {
		t.Fatalf("code %q", nf.code(t))
	}
	e.must(404, "DELETE", "/v1/apis/orders", "")
	e.must(412, "PUT", "/v1/apis/orders", apiJSON("orders", "/x/"), "If-Match: "+etag) // If-Match on an absent object
}

func TestPolicyCRUDAndReferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("orders", "/orders/"))
	bad := e.must(400, "POST", "/v1/policies", policyJSON("gold", "orders", "nope"))
	if got := bad.fields(t); !reflect.DeepEqual(got, []string{"access[1].api"}) {
		t.Fatalf("unknown API problems %v", got)
	}
	e.must(201, "POST", "/v1/policies", policyJSON("gold", "orders"))
	e.must(201, "POST", "/v1/policies", policyJSON("silver", "orders"))
	c := e.must(409, "DELETE", "/v1/apis/orders", "")
	if !strings.Contains(string(c.body), "gold") || !strings.Contains(string(c.body), "silver") {
		t.Fatalf("409 does not name the policies: %s", c.body)
	}
	e.must(200, "PUT", "/v1/policies/gold", `{"access":[],"quota":{"max":5,"renewal":"1h"}}`)
	if q := e.must(200, "GET", "/v1/policies/gold", "").json(t)["quota"]; q == nil {
		t.Fatal("policy update lost")
	}
	e.must(400, "PUT", "/v1/policies/gold", `{"id":"other","access":[]}`)
	e.must(204, "DELETE", "/v1/policies/silver", "")
	e.must(204, "DELETE", "/v1/apis/orders", "")
	e.must(404, "GET", "/v1/policies/silver", "")
}

func TestValidationListsEveryProblem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("orders", "/orders/"))
	cases := []struct {
		name, path, body string
		fields           []string
	}{
		{"api fields", "/v1/apis", `{"id":"bad id","listen_path":"orders","upstream":{"targets":["ftp://x"]},"auth":{"mode":"magic"},"rate_limit":{"rate":-1,"per":"1s"}}`,
			[]string{"auth.mode", "id", "listen_path", "rate_limit.rate", "upstream.targets[0]"}},
		{"listen path clash", "/v1/apis", apiJSON("orders2", "/orders"), []string{"listen_path"}},
		{"unknown fields everywhere", "/v1/apis", `{"id":"a","listen_path":"/a/","upstream":{"targets":["http://h"],"tls":true},"auth":{"mode":"keyless"},"colour":"red"}`,
			[]string{"colour", "upstream.tls"}},
		{"wrong types", "/v1/apis", `{"id":5,"listen_path":"/a/","upstream":{"targets":"http://h","read_timeout":"soon"},"auth":{"mode":"keyless"},"max_body_bytes":1.5,"strip_listen_path":"yes"}`,
			[]string{"id", "max_body_bytes", "strip_listen_path", "upstream.read_timeout", "upstream.targets"}},
		{"policy", "/v1/policies", `{"id":"p","access":[{"api":"ghost","methods":["get"],"paths":["/a/{"]}],"rate_limit":{"rate":1,"per":"0s","mode":"fast"},"quota":{"max":0,"renewal":"1h"}}`,
			[]string{"access[0].api", "access[0].methods[0]", "access[0].paths[0]", "quota.max", "rate_limit.mode", "rate_limit.per"}},
		{"key", "/v1/keys", `{"policies":["ghost"],"key":"short","expires_at":"tomorrow"}`, []string{"expires_at"}},
		{"key cross checks", "/v1/keys", `{"policies":["ghost"],"key":"short","access":[{"api":"nope"}]}`, []string{"access[0].api", "key", "policies[0]"}},
		{"not JSON", "/v1/apis", `{"id":`, []string{""}},
		{"empty body", "/v1/policies", ``, []string{""}},
		{"trailing data", "/v1/apis", apiJSON("z", "/z/") + `{}`, []string{""}},
		{"array body", "/v1/apis", `[]`, []string{""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := e.must(400, "POST", tc.path, tc.body)
			if r.code(t) != "invalid_request" {
				t.Fatalf("code %q", r.code(t))
			}
			if got := r.fields(t); !reflect.DeepEqual(got, tc.fields) {
				t.Fatalf("problem fields %q, want %q: %s", got, tc.fields, r.body)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, h := range []string{"Authorization: ", "Authorization: Bearer wrong", "Authorization: Basic " + token, "Authorization: Bearer " + token + "x"} {
		r := e.do("GET", "/v1/apis", "", h)
		if r.status != 401 || r.code(t) != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%q: %d %s", h, r.status, r.body)
		}
	}
	for _, p := range []string{"/health", "/ready", "/metrics"} {
		e.must(200, "GET", p, "", "Authorization: ")
	}
	e.must(401, "GET", "/v1/openapi.json", "", "Authorization: ")
	e.must(401, "POST", "/v1/keys", `{}`, "Authorization: ")
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if r := e.must(404, "GET", "/v1/nothing", ""); r.code(t) != "not_found" {
		t.Fatalf("code %q", r.code(t))
	}
	r := e.must(405, "PATCH", "/v1/apis/x", "")
	if r.code(t) != "method_not_allowed" || !strings.Contains(r.header.Get("Allow"), "PUT") {
		t.Fatalf("405: %v %s", r.header, r.body)
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("a", "/a/"))
	want := map[string]bool{}
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7"} {
		e.must(201, "POST", "/v1/policies", policyJSON(id, "a"))
		want[id] = true
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		r := e.must(200, "GET", "/v1/policies?limit=3&cursor="+cursor, "").json(t)
		pages++
		for _, it := range r["items"].([]any) {
			id := it.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		cursor = r["next_cursor"].(string)
		if cursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || !reflect.DeepEqual(seen, want) {
		t.Fatalf("%d pages, saw %v", pages, seen)
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=5000", "cursor=!!!"} {
		e.must(400, "GET", "/v1/policies?"+q, "")
	}
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("a", "/a/"))
	e.must(201, "POST", "/v1/policies", policyJSON("gold", "a"))

	c := e.must(201, "POST", "/v1/keys", `{"alias":"alice","policies":["gold"]}`)
	var created struct {
		Key  string `json:"key"`
		ID   string `json:"id"`
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(c.body, &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Key, "sk_") || len(created.Key) != 3+43 || created.Hash != model.HashKey([]byte(created.Key)) || created.ID == "" {
		t.Fatalf("created key %+v", created)
	}
	// The clear key is never shown again.
	for _, p := range []string{"/v1/keys/" + created.ID, "/v1/keys"} {
		r := e.must(200, "GET", p, "")
		if strings.Contains(string(r.body), created.Key) || strings.Contains(string(r.body), `"key"`) {
			t.Fatalf("GET %s shows the clear key: %s", p, r.body)
		}
	}
	raw, _, _ := e.store.GetRaw(t.Context(), store.KindKey, created.ID)
	if strings.Contains(string(raw), created.Key) {
		t.Fatal("stored key contains the clear value")
	}

	// Caller-chosen value for migration; too short is refused; reuse is a conflict.
	e.must(400, "POST", "/v1/keys", `{"id":"legacy","policies":["gold"],"key":"too-short"}`)
	m := e.must(201, "POST", "/v1/keys", `{"id":"legacy","policies":["gold"],"key":"legacy-key-0123456789"}`).json(t)
	if m["key"] != "legacy-key-0123456789" || m["hash"] != model.HashKey([]byte("legacy-key-0123456789")) {
		t.Fatalf("migrated key %v", m)
	}
	e.must(409, "POST", "/v1/keys", `{"id":"legacy2","policies":["gold"],"key":"legacy-key-0123456789"}`)
	e.must(409, "POST", "/v1/keys", `{"id":"legacy","policies":["gold"]}`)

	// Update keeps the hash; changing the hash is refused; stale If-Match is 412.
	g := e.must(200, "GET", "/v1/keys/legacy", "")
	etag := g.header.Get("ETag")
	u := e.must(200, "PUT", "/v1/keys/legacy", `{"alias":"migrated","policies":["gold"],"disabled":true}`, "If-Match: "+etag).json(t)
	if u["hash"] != m["hash"] || u["alias"] != "migrated" || u["disabled"] != true || u["key"] != nil {
		t.Fatalf("updated key %v", u)
	}
	e.must(412, "PUT", "/v1/keys/legacy", `{"policies":["gold"]}`, "If-Match: "+etag)
	e.must(400, "PUT", "/v1/keys/legacy", `{"policies":["gold"],"hash":"`+strings.Repeat("0", 64)+`"}`)
	e.must(400, "PUT", "/v1/keys/legacy", `{"policies":["ghost"]}`)
	e.must(404, "PUT", "/v1/keys/ghost", `{"policies":["gold"]}`)
	// GET, edit, PUT round trip works.
	e.must(200, "PUT", "/v1/keys/legacy", string(e.must(200, "GET", "/v1/keys/legacy", "").body))

	// Rotation: new value, same id; the old one stops working.
	rot := e.must(200, "POST", "/v1/keys/"+created.ID+"/rotate", "").json(t)
	newKey, _ := rot["key"].(string)
	if !strings.HasPrefix(newKey, "sk_") || newKey == created.Key || rot["id"] != created.ID || rot["hash"] != model.HashKey([]byte(newKey)) {
		t.Fatalf("rotated %v", rot)
	}
	if _, err := e.store.KeyByHash(t.Context(), created.Hash); err == nil {
		t.Fatal("old key still stored after rotation")
	}
	if k, err := e.store.KeyByHash(t.Context(), model.HashKey([]byte(newKey))); err != nil || k.Alias != "alice" {
		t.Fatalf("new key: %+v %v", k, err)
	}
	chosen := e.must(200, "POST", "/v1/keys/legacy/rotate", `{"key":"legacy-key-rotated-0001"}`).json(t)
	if chosen["hash"] != model.HashKey([]byte("legacy-key-rotated-0001")) {
		t.Fatalf("rotate to chosen value: %v", chosen)
	}
	e.must(400, "POST", "/v1/keys/legacy/rotate", `{"key":"x"}`)
	e.must(400, "POST", "/v1/keys/legacy/rotate", `{"value":"legacy-key-rotated-0002"}`)
	e.must(404, "POST", "/v1/keys/ghost/rotate", "")

	e.must(204, "DELETE", "/v1/keys/legacy", "")
	e.must(404, "GET", "/v1/keys/legacy", "")
	if _, err := e.store.KeyByHash(t.Context(), model.HashKey([]byte("legacy-key-rotated-0001"))); err == nil {
		t.Fatal("deleted key still stored")
	}
}

func TestWritesAreAnnounced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sub, err := e.nc.SubscribeSync(bus.Names{}.SyncWildcard())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e.must(201, "POST", "/v1/apis", apiJSON("a", "/a/"))
	e.must(201, "POST", "/v1/policies", policyJSON("p", "a"))
	k := e.must(201, "POST", "/v1/keys", `{"id":"k","policies":["p"]}`).json(t)
	rot := e.must(200, "POST", "/v1/keys/k/rotate", "").json(t)
	e.must(400, "POST", "/v1/apis", `{}`) // failed writes announce nothing
	e.must(204, "DELETE", "/v1/keys/k", "")
	want := []struct {
		subject string
		change  bus.SyncChange
	}{
		{"sluice.sync.api", bus.SyncChange{Kind: "api", Op: "put", ID: "a"}},
		{"sluice.sync.policy", bus.SyncChange{Kind: "policy", Op: "put", ID: "p"}},
		{"sluice.sync.key", bus.SyncChange{Kind: "key", Op: "put", ID: "k", Hash: k["hash"].(string)}},
		{"sluice.sync.key", bus.SyncChange{Kind: "key", Op: "put", ID: "k", Hash: rot["hash"].(string), OldHash: k["hash"].(string)}},
		{"sluice.sync.key", bus.SyncChange{Kind: "key", Op: "delete", ID: "k", Hash: rot["hash"].(string), OldHash: rot["hash"].(string)}},
	}
	for i, w := range want {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		m, err := bus.DecodeSyncMessage(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if msg.Subject != w.subject || m.Version != int64(i+1) || len(m.Changes) != 1 || m.Changes[0] != w.change {
			t.Fatalf("message %d on %s: %+v, want %+v", i, msg.Subject, m, w)
		}
	}
}

func TestNodesAndStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("a", "/a/"))
	e.must(201, "POST", "/v1/apis", apiJSON("b", "/b/"))
	pub := e.nats.Conn(t)
	send := func(id string, cv int64) {
		b, _ := json.Marshal(bus.Heartbeat{ID: id, Address: "127.0.0.1:8080", Version: "dev", ConfigVersion: cv, SentAt: time.Now()})
		if err := pub.Publish(bus.Names{}.NodeSubject(id), b); err != nil {
			t.Fatal(err)
		}
	}
	status := func() map[string]any { return e.must(200, "GET", "/v1/status", "").json(t) }
	send("n1", 2)
	send("n2", 1)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := len(e.must(200, "GET", "/v1/nodes", "").json(t)["items"].([]any)); n != 2 {
			return errf("%d nodes", n)
		}
		return nil
	})
	s := status()
	if s["config_version"] != 2.0 || s["nodes_live"] != 2.0 || s["nodes_converged"] != 1.0 || s["converged"] != false {
		t.Fatalf("status %v", s)
	}
	send("n2", 2)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if s := status(); s["converged"] != true || s["nodes_converged"] != 2.0 {
			return errf("status %v", s)
		}
		return nil
	})
	items := e.must(200, "GET", "/v1/nodes", "").json(t)["items"].([]any)
	n1 := items[0].(map[string]any)
	if n1["id"] != "n1" || n1["live"] != true || n1["address"] != "127.0.0.1:8080" || n1["version"] != "dev" || n1["last_heartbeat"] == "" {
		t.Fatalf("node %v", n1)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("a", "/a/"))
	e.must(400, "POST", "/v1/apis", `{}`)
	m := string(e.must(200, "GET", "/metrics", "").body)
	testutil.LintMetrics(t, m)
	testutil.CheckExported(t, m, filepath.Join("..", "..", "..", "deployments", "grafana", "exported", "syncer.txt"))
	for _, want := range []string{
		`sluice_admin_requests_total{code="201",route="POST /v1/apis"} 1`,
		`sluice_admin_requests_total{code="400",route="POST /v1/apis"} 1`,
		`sluice_sync_published_total 1`,
		`sluice_sync_publish_errors_total 0`,
		`sluice_nodes_live 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestReadyFailsWithoutRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	e := newEnvOn(t, r, testutil.StartNATS(t))
	e.must(http.StatusOK, "GET", "/ready", "")
	r.Stop()
	if rr := e.must(http.StatusServiceUnavailable, "GET", "/ready", ""); !strings.Contains(string(rr.body), `"ready":false`) {
		t.Fatalf("ready body %s", rr.body)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

func errf(format string, args ...any) error {
	b, _ := json.Marshal(args)
	return testErr(format + " " + string(b))
}
