package cli

import (
	"strings"
	"testing"
)

// TestOrgsCommands: orgs are created from YAML, listed, shown; a key is
// put in an org with --org, moved out with --org ""; an org in use is not
// deleted (non-zero exit naming the reason), an unknown org on a key is
// refused naming the field.
func TestOrgsCommands(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	addr := s.URL
	must(t, addr, `{"id":"orders","listen_path":"/orders/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"api_key"}}`, "apis", "create")
	must(t, addr, `{"id":"gold","access":[{"api":"orders"}]}`, "policies", "create")
	must(t, addr, "id: acme\nrate_limit: {rate: 100, per: 1s}\nquota: {max: 5000, renewal: 24h}\n", "orgs", "create")
	if out := must(t, addr, "", "orgs", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "100/1s") || !strings.Contains(out, "5000/24h") {
		t.Fatalf("orgs list:\n%s", out)
	}
	if out := must(t, addr, "", "orgs", "get", "acme", "-o", "json"); !strings.Contains(out, `"max": 5000`) {
		t.Fatalf("orgs get:\n%s", out)
	}
	r := sluicectl(t, addr, "", "keys", "create", "--id", "k1", "--policy", "gold", "--org", "ghost")
	if r.code == 0 || !strings.Contains(r.stderr, "org") || !strings.Contains(r.stderr, "ghost") {
		t.Fatalf("key in an unknown org: exit %d\n%s", r.code, r.stderr)
	}
	must(t, addr, "", "keys", "create", "--id", "k1", "--policy", "gold", "--org", "acme")
	if out := must(t, addr, "", "keys", "get", "k1", "-o", "json"); !strings.Contains(out, `"org": "acme"`) {
		t.Fatalf("key not in acme:\n%s", out)
	}
	r = sluicectl(t, addr, "", "orgs", "delete", "acme")
	if r.code == 0 || !strings.Contains(r.stderr, "1 keys") {
		t.Fatalf("delete an org in use: exit %d\n%s", r.code, r.stderr)
	}
	must(t, addr, "", "keys", "update", "k1", "--org", "")
	must(t, addr, "", "orgs", "delete", "acme")
	if out := must(t, addr, "", "orgs", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("orgs after delete:\n%s", out)
	}
}
