package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/syncer/internal/apitest"
)

const (
	ciValue      = "sk_ci_clear_value_0123456789abcdef"
	viewerToken  = "viewer-token-0123456789abcdef"
	partnerValue = "partner-clear-value-0123456789"
)

// keysFile is a declarative file whose keys hold their values as
// references and as a hash.
func keysFile() string {
	return `apis:
  - id: orders
    tags: [team-a]
    listen_path: /orders/
    upstream: {targets: ["http://127.0.0.1:8001"]}
    auth: {mode: api_key}
policies:
  - id: gold
    tags: [team-a]
    access: [{api: orders}]
    rate_limit: {rate: 100, per: 1s}
keys:
  - id: ci
    alias: ci
    tags: [team-a]
    policies: [gold]
    expires_at: 2031-01-02T03:04:05Z
    key: ${env:CI_KEY}
  - id: partner
    tags: [team-a]
    policies: [gold]
    quota: {max: 1000, renewal: 24h}
    hash: ` + model.HashKey([]byte(partnerValue)) + "\n"
}

// TestApplyKeysRoundTrip: apply of a file with keys, diff 0 after it, an
// export holding hashes (never a value) that applies and diffs as a no-op,
// prune of a dropped key, and no clear value ever printed.
func TestApplyKeysRoundTrip(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	vars := map[string]string{"CI_KEY": ciValue}
	f := writeFile(t, "sluice.yaml", keysFile())
	var printed strings.Builder
	run := func(want int, args ...string) string {
		t.Helper()
		r := sluicectlEnv(t, s.URL, vars, args...)
		printed.WriteString(r.stdout + r.stderr)
		if r.code != want {
			t.Fatalf("sluicectl %s: exit %d, want %d\n%s%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
		}
		return r.stdout
	}
	out := run(0, "apply", "-f", f)
	if !strings.Contains(out, "+ create key ci\n") || !strings.Contains(out, "plan: 4 to create") {
		t.Fatalf("apply:\n%s", out)
	}
	k, err := s.Store.KeyByHash(context.Background(), model.HashKey([]byte(ciValue)))
	if err != nil || k.ID != "ci" || k.ExpiresAt == nil {
		t.Fatalf("stored ci: %+v, %v", k, err)
	}
	if out := run(0, "diff", "-f", f, "--prune"); out != "plan: 0 to create, 0 to update, 0 to delete\n" {
		t.Errorf("diff after apply:\n%s", out)
	}
	exported := run(0, "export")
	if !strings.Contains(exported, "hash: "+model.HashKey([]byte(ciValue))) || strings.Contains(exported, "key:") {
		t.Errorf("export of keys:\n%s", exported)
	}
	ef := writeFile(t, "export.yaml", exported)
	v := version(t, s)
	if out := run(0, "diff", "-f", ef, "--prune"); out != "plan: 0 to create, 0 to update, 0 to delete\n" {
		t.Errorf("diff of the export:\n%s", out)
	}
	run(0, "apply", "-f", ef, "--prune")
	if got := version(t, s); got != v {
		t.Errorf("apply of the export wrote: version %d -> %d", v, got)
	}
	// Rotation by the environment: diff shows the hash change, exit 2.
	vars["CI_KEY"] = ciValue + "-rotated"
	if out := run(ExitDiff, "diff", "-f", f); !strings.Contains(out, "~ update key ci\n    ~ hash: ") {
		t.Errorf("diff of a rotated value:\n%s", out)
	}
	// Dropping partner from the file prunes it.
	noPartner := keysFile()[:strings.Index(keysFile(), "  - id: partner")]
	out = run(0, "apply", "-f", writeFile(t, "np.yaml", noPartner), "--prune")
	if !strings.Contains(out, "~ update key ci\n") || !strings.Contains(out, "- delete key partner\n") {
		t.Errorf("apply --prune without partner:\n%s", out)
	}
	for _, secret := range []string{ciValue, partnerValue} {
		if strings.Contains(printed.String(), secret) {
			t.Errorf("sluicectl printed the clear value %q", secret)
		}
	}
}

// TestApplyKeysBadInput: a key problem is reported with file, line and
// field path, and nothing is written.
func TestApplyKeysBadInput(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	before := version(t, s)
	tests := []struct{ name, file, want string }{
		{"unknown policy", strings.Replace(keysFile(), "policies: [gold]\n    expires_at", "policies: [platinum]\n    expires_at", 1),
			"f.yaml:16: keys[0].policies[0]: unknown policy \"platinum\""},
		{"bad hash", strings.Replace(keysFile(), "hash: ", "hash: XYZ", 1), "f.yaml:23: keys[1].hash: must be the lowercase hex SHA-256"},
		{"duplicate id", strings.Replace(keysFile(), "id: partner", "id: ci", 1), "f.yaml:19: keys[1].id: duplicate id \"ci\""},
		{"clear value", strings.Replace(keysFile(), "${env:CI_KEY}", ciValue, 1), "f.yaml:18: keys[0].key: a key's value is a secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := writeFile(t, "f.yaml", tt.file)
			for _, cmd := range []string{"apply", "diff"} {
				r := sluicectlEnv(t, s.URL, map[string]string{"CI_KEY": ciValue}, cmd, "-f", f)
				if r.code != ExitError || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "nothing was written") {
					t.Errorf("%s: exit %d, stderr lacks %q:\n%s", cmd, r.code, tt.want, r.stderr)
				}
				if strings.Contains(r.stdout+r.stderr, ciValue) {
					t.Errorf("%s printed the clear value", cmd)
				}
			}
			if v := version(t, s); v != before {
				t.Errorf("a refused file wrote: version %d -> %d", before, v)
			}
		})
	}
}

// TestDiffWithViewerToken: diff works with a viewer's token (it plans with
// POST /v1/plan), apply does not, and a viewer's plan compares no secret.
func TestDiffWithViewerToken(t *testing.T) {
	t.Parallel()
	src, err := tokens.NewSource(tokens.SourceOptions{Static: []tokens.Token{
		tokens.New("admin", tokens.Admin, testToken), tokens.New("vera", tokens.Viewer, viewerToken)}})
	if err != nil {
		t.Fatal(err)
	}
	a := apitest.StartTokens(t, testutil.StartRedis(t), testutil.StartNATS(t), src, 10*time.Second)
	secret := "c3RvcmVkc2VjcmV0MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk="
	file := func(sec string) string {
		return `apis:
  - id: j
    listen_path: /j/
    upstream: {targets: ["http://127.0.0.1:8001"]}
    auth: {mode: jwt, jwt: {algorithms: [HS256], keys: {secret: "` + sec + `"}, policies: {default: [gold]}}}
policies:
  - id: gold
    access: [{api: j}]
`
	}
	must(t, a.URL, "", "apply", "-f", writeFile(t, "a.yaml", file(secret)))
	changed := writeFile(t, "b.yaml", file("bmV3c2VjcmV0MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmM="))
	viewer := map[string]string{"SLUICE_ADMIN_TOKEN": viewerToken}
	// Secrets are not compared for a viewer: a changed one is not a
	// difference (else diff would confirm a guessed secret), and a note says so.
	r := sluicectlEnv(t, a.URL, viewer, "diff", "-f", changed, "--show-secrets")
	if r.code != ExitOK || strings.Contains(r.stdout, "secret") || !strings.Contains(r.stderr, "secrets were not compared") {
		t.Errorf("viewer diff: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := sluicectl(t, a.URL, "", "diff", "-f", changed); r.code != ExitDiff || !strings.Contains(r.stdout, "~ auth.jwt.keys.secret: ") ||
		strings.Contains(r.stderr, "not compared") {
		t.Errorf("admin diff: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := sluicectlEnv(t, a.URL, viewer, "diff", "-f", writeFile(t, "c.yaml", file(secret))); r.code != ExitOK {
		t.Errorf("viewer diff in sync: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := sluicectlEnv(t, a.URL, viewer, "apply", "-f", changed); r.code != ExitError || !strings.Contains(r.stderr, "forbidden") {
		t.Errorf("viewer apply: exit %d\n%s", r.code, r.stderr)
	}
}
