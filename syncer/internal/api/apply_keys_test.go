package api_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tokens"
)

func keyJSON(id, value string, extra ...string) string {
	parts := append([]string{`"id":"` + id + `"`, `"hash":"` + model.HashKey([]byte(value)) + `"`}, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

func keysMember(keys ...string) string { return `"keys":[` + strings.Join(keys, ",") + `]` }

// TestApplyKeys: keys are created, updated, rotated and pruned in the same
// atomic batch as APIs and policies; a request without keys leaves them
// alone even with prune.
func TestApplyKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	apis := []string{apiJSON("orders", "/orders/")}
	pols := []string{policyJSON("gold", "orders")}
	body := applyBody(false, false, apis, pols, keysMember(
		keyJSON("ci", "ci-value-0123456789", `"policies":["gold"]`, `"tags":["team-a"]`, `"alias":"ci"`),
		keyJSON("partner", "partner-value-0123456789", `"policies":["gold"]`, `"expires_at":"2030-01-02T03:04:05Z"`)))
	res := decodeApply(t, e.must(200, "POST", "/v1/apply", body))
	if res.Version != 1 || len(res.Plan.Actions) != 4 || res.Plan.Actions[3].Kind != "key" {
		t.Fatalf("first apply: %+v", res)
	}
	k, err := e.store.KeyByHash(ctx, model.HashKey([]byte("ci-value-0123456789")))
	if err != nil || k.ID != "ci" || k.Alias != "ci" || !reflect.DeepEqual(k.Tags, []string{"team-a"}) || k.CreatedAt.IsZero() {
		t.Fatalf("stored key ci: %+v, %v", k, err)
	}
	if again := decodeApply(t, e.must(200, "POST", "/v1/apply", body)); len(again.Plan.Actions) != 0 || again.Version != 1 {
		t.Fatalf("same apply again: %+v", again)
	}
	// Rotate ci and change partner's settings, in one version.
	body2 := applyBody(false, false, apis, pols, keysMember(
		keyJSON("ci", "ci-value-rotated-0123", `"policies":["gold"]`, `"tags":["team-a"]`, `"alias":"ci"`),
		keyJSON("partner", "partner-value-0123456789", `"policies":["gold"]`, `"disabled":true`)))
	res = decodeApply(t, e.must(200, "POST", "/v1/apply", body2))
	if res.Version != 2 || len(res.Plan.Actions) != 2 {
		t.Fatalf("rotation: %+v", res)
	}
	if _, err := e.store.KeyByHash(ctx, model.HashKey([]byte("ci-value-0123456789"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old value of ci still stored: %v", err)
	}
	rotated, err := e.store.KeyByHash(ctx, model.HashKey([]byte("ci-value-rotated-0123")))
	if err != nil || !rotated.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("rotated ci: %+v (created_at kept?), %v", rotated, err)
	}
	// Without a keys member, prune leaves every key.
	res = decodeApply(t, e.must(200, "POST", "/v1/apply", applyBody(true, false, apis, pols)))
	if len(res.Plan.Actions) != 0 {
		t.Fatalf("prune without keys touched: %+v", res.Plan)
	}
	// With keys: [] and prune, both go, with their changelog hashes.
	res = decodeApply(t, e.must(200, "POST", "/v1/apply", applyBody(true, false, apis, pols, keysMember())))
	if res.Version != 3 || len(res.Plan.Actions) != 2 || res.Plan.Actions[0].Op != "delete" || res.Plan.Actions[0].ETag == "" {
		t.Fatalf("prune keys: %+v", res)
	}
	vers, err := e.store.ChangesSince(ctx, 2, 0)
	if err != nil || len(vers) != 1 || len(vers[0].Changes) != 2 || vers[0].Changes[0].Hash == "" {
		t.Fatalf("changelog of the prune: %+v, %v", vers, err)
	}
}

// TestApplyKeysRefusedBeforeWrite: an unknown policy, a bad hash, a
// duplicate id, a clear value or a client certificate's id refuses the
// whole apply with the field path, and nothing is written.
func TestApplyKeysRefusedBeforeWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("orders", "/orders/"))
	e.must(201, "POST", "/v1/policies", policyJSON("gold", "orders"))
	base := e.version()
	apis, pols := []string{apiJSON("orders", "/orders/"), apiJSON("new", "/new/")}, []string{policyJSON("gold", "orders")}
	good := keyJSON("ok", "ok-value-0123456789", `"policies":["gold"]`)
	tests := []struct {
		name  string
		keys  []string
		field string
	}{
		{"unknown policy", []string{good, keyJSON("k", "k-value-0123456789", `"policies":["nowhere"]`)}, "keys[1].policies[0]"},
		{"bad hash", []string{good, `{"id":"k","hash":"ABC","policies":["gold"]}`}, "keys[1].hash"},
		{"duplicate id", []string{good, keyJSON("ok", "other-value-0123456789", `"policies":["gold"]`)}, "keys[1].id"},
		{"same value twice", []string{good, keyJSON("k", "ok-value-0123456789", `"policies":["gold"]`)}, "keys[1].hash"},
		{"clear value", []string{good, `{"id":"k","key":"sk_clear_value_0123456789","policies":["gold"]}`}, "keys[1].key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(400, "POST", "/v1/apply", applyBody(false, false, apis, pols, keysMember(tt.keys...)))
			if got := r.fields(t); !reflect.DeepEqual(got, []string{tt.field}) {
				t.Errorf("fields %q, want %q: %s", got, tt.field, r.body)
			}
			if strings.Contains(string(r.body), "sk_clear_value") {
				t.Errorf("the answer echoes a clear value: %s", r.body)
			}
			if v := e.version(); v != base {
				t.Errorf("version %d after a refused apply, want %d", v, base)
			}
		})
	}
}

// TestApplyKeysSelectTagAndPreconditions: with --select-tag, keys outside
// the tag are neither updated nor pruned; an if_match on a key that no
// longer holds refuses everything.
func TestApplyKeysSelectTagAndPreconditions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	apis, pols := []string{apiJSON("orders", "/orders/")}, []string{policyJSON("gold", "orders")}
	e.must(200, "POST", "/v1/apply", applyBody(false, false, apis, pols, keysMember(
		keyJSON("a1", "a1-value-0123456789", `"policies":["gold"]`, `"tags":["team-a"]`),
		keyJSON("a2", "a2-value-0123456789", `"policies":["gold"]`, `"tags":["team-a"]`),
		keyJSON("b1", "b1-value-0123456789", `"policies":["gold"]`, `"tags":["team-b"]`))))
	// team-a keeps a1, drops a2; b1 is outside the selection.
	res := decodeApply(t, e.must(200, "POST", "/v1/apply", applyBody(true, false, nil, nil,
		`"select_tag":"team-a"`, keysMember(keyJSON("a1", "a1-value-0123456789", `"policies":["gold"]`, `"tags":["team-a"]`)))))
	var got []string
	for _, a := range res.Plan.Actions {
		got = append(got, a.Op+" "+a.Kind+" "+a.ID)
	}
	if !reflect.DeepEqual(got, []string{"delete key a2"}) {
		t.Fatalf("select-tag prune: %q", got)
	}
	if _, _, err := e.store.GetRaw(context.Background(), store.KindKey, "b1"); err != nil {
		t.Fatalf("b1 outside the selection: %v", err)
	}
	r := e.must(400, "POST", "/v1/apply", applyBody(false, false, nil, nil, `"select_tag":"team-a"`,
		keysMember(keyJSON("b1", "b1-value-0123456789", `"policies":["gold"]`, `"tags":["team-a"]`))))
	if f := r.fields(t); !reflect.DeepEqual(f, []string{"keys[0].id"}) {
		t.Errorf("taking b1 into team-a: %q", f)
	}
	v := e.version()
	r = e.must(412, "POST", "/v1/apply", applyBody(false, false, apis, pols, `"if_match":{"key/a1":"\"0000\""}`,
		keysMember(keyJSON("a1", "a1-value-rotated-0123", `"policies":["gold"]`, `"tags":["team-a"]`))))
	if e.version() != v || r.code(t) != "precondition_failed" {
		t.Errorf("stale if_match on a key: %d %s", e.version(), r.body)
	}
}

// TestPlanForViewer: a viewer's token may plan (POST /v1/plan) but not
// apply; the plan writes nothing and does not compare secrets, so it
// cannot tell a viewer whether a guessed secret is the stored one; an
// operator's plan shows the change.
func TestPlanForViewer(t *testing.T) {
	t.Parallel()
	e, _, _ := newRolesEnv(t)
	jwtAPI := func(secret, path string) string {
		return `{"id":"j","listen_path":"` + path + `","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"jwt","jwt":{"algorithms":["HS256"],"keys":{"secret":"` + secret + `"},"policies":{"default":["gold"]}}}}`
	}
	const stored = "storedsecret0123456789abcdef0123456789abcdefgh"
	pols := []string{policyJSON("gold", "j")}
	e.must(200, "POST", "/v1/apply", applyBody(false, false, []string{jwtAPI(stored, "/j/")}, pols))
	v := e.version()
	guess := applyBody(false, false, []string{jwtAPI("newsecret0123456789abcdef0123456789abcdefghi", "/j/")}, pols)
	right := applyBody(false, false, []string{jwtAPI(stored, "/j/")}, pols)
	e.must(403, "POST", "/v1/apply", guess, as(tokens.Viewer))
	wrong := e.must(200, "POST", "/v1/plan", guess, as(tokens.Viewer))
	same := e.must(200, "POST", "/v1/plan", right, as(tokens.Viewer))
	if string(wrong.body) != string(same.body) || strings.Contains(string(wrong.body), "keys.secret") ||
		!strings.Contains(string(wrong.body), `"secrets_unchecked":true`) {
		t.Errorf("a viewer's plan tells a wrong secret from the stored one:\nwrong: %s\nright: %s", wrong.body, same.body)
	}
	if p := decodeApply(t, wrong); !p.DryRun || len(p.Plan.Actions) != 0 || e.version() != v {
		t.Errorf("viewer's plan of a secret change: %+v, version %d -> %d", p, v, e.version())
	}
	// Other changes of the same object still show, without the secret.
	moved := e.must(200, "POST", "/v1/plan", applyBody(false, false,
		[]string{jwtAPI("newsecret0123456789abcdef0123456789abcdefghi", "/j2/")}, pols), as(tokens.Viewer))
	if p := decodeApply(t, moved); len(p.Plan.Actions) != 1 || !strings.Contains(string(moved.body), `"field":"listen_path"`) ||
		strings.Contains(string(moved.body), "keys.secret") {
		t.Errorf("viewer's plan of a moved API: %s", moved.body)
	}
	operator := e.must(200, "POST", "/v1/plan", guess, as(tokens.Operator))
	if !strings.Contains(string(operator.body), "storedsecret") || !strings.Contains(string(operator.body), "auth.jwt.keys.secret") ||
		strings.Contains(string(operator.body), "secrets_unchecked") {
		t.Errorf("operator's plan lacks the values: %s", operator.body)
	}
	if e.version() != v {
		t.Errorf("plans wrote: version %d -> %d", v, e.version())
	}
}

// TestApplyKeysOperator: as with the key routes, an operator's apply may
// change a key's settings and delete it, but not create a key or change
// its value (403, nothing written).
func TestApplyKeysOperator(t *testing.T) {
	t.Parallel()
	e, _, _ := newRolesEnv(t)
	apis, pols := []string{apiJSON("orders", "/orders/")}, []string{policyJSON("gold", "orders")}
	withKey := func(value, alias string) string {
		return applyBody(true, false, apis, pols, keysMember(keyJSON("ci", value, `"policies":["gold"]`, `"alias":"`+alias+`"`)))
	}
	e.must(403, "POST", "/v1/apply", withKey("ci-value-0123456789", "a"), as(tokens.Operator))
	if v := e.version(); v != 0 {
		t.Fatalf("a refused apply wrote version %d", v)
	}
	e.must(200, "POST", "/v1/apply", withKey("ci-value-0123456789", "a"), as(tokens.Admin))
	e.must(200, "POST", "/v1/apply", withKey("ci-value-0123456789", "b"), as(tokens.Operator))
	v := e.version()
	e.must(403, "POST", "/v1/apply", withKey("ci-value-rotated-0123", "b"), as(tokens.Operator))
	if e.version() != v {
		t.Fatal("a refused rotation wrote")
	}
	e.must(200, "POST", "/v1/apply", applyBody(true, false, apis, pols, keysMember()), as(tokens.Operator))
	if _, _, err := e.store.GetRaw(context.Background(), store.KindKey, "ci"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("operator's prune of a key: %v", err)
	}
}
