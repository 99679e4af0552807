package cli

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// A server that answers 200 to everything is not taken for a syncer: the
// command fails with exit 1 before sending anything else.
func TestRefusesAServerThatIsNotASyncer(t *testing.T) {
	t.Parallel()
	var writes int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writes++
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[],"version":"1.0"}`))
	}))
	t.Cleanup(other.Close)
	for _, args := range [][]string{
		{"apply", "-f", "testdata/sluice.yaml"},
		{"apis", "list"},
		{"version"},
		{"diff", "-f", "testdata/sluice.yaml"},
	} {
		r := sluicectl(t, other.URL, "", args...)
		if r.code != ExitError || !strings.Contains(r.stderr, "not a Sluice syncer at "+other.URL) {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if writes != 0 {
		t.Errorf("%d writes sent to a server that is not a syncer", writes)
	}
}

func TestVersionShowsClientAndServer(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	out := must(t, s.URL, "", "version")
	if !strings.HasPrefix(out, "Client: sluicectl ") || !strings.Contains(out, "\nServer: sluice-syncer ") || !strings.Contains(out, "admin API v1") {
		t.Errorf("version:\n%s", out)
	}
	var v struct {
		Client map[string]string `json:"client"`
		Server map[string]string `json:"server"`
	}
	if err := json.Unmarshal([]byte(must(t, s.URL, "", "version", "-o", "json")), &v); err != nil || v.Server["product"] != "sluice-syncer" || v.Client["version"] == "" {
		t.Errorf("version -o json: %+v, %v", v, err)
	}
	if out := must(t, "http://127.0.0.1:1", "", "version", "--client"); strings.Contains(out, "Server") {
		t.Errorf("version --client asked the server:\n%s", out)
	}
}

// Unknown flags and commands exit 2 wherever they are on the line.
func TestUnknownFlagAnywhereExits2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--bogus", "apis", "list"},
		{"apis", "--bogus", "list"},
		{"apis", "list", "--bogus"},
		{"--bogus", "apply", "-f", "x"},
		{"apply", "--bogus", "-f", "x"},
		{"diff", "-f", "x", "--bogus"},
		{"version", "--bogus"},
		{"config", "use-context"},
		{"frobnicate"},
		{"-o", "xml", "version"},
	} {
		r := sluicectl(t, "http://127.0.0.1:1", "", args...)
		if r.code != ExitUsage || r.stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{"bash": "__start_sluicectl", "zsh": "#compdef sluicectl", "fish": "complete -c sluicectl", "powershell": "Register-ArgumentCompleter"} {
		out := must(t, "", "", "completion", shell)
		if !strings.Contains(out, want) {
			t.Errorf("completion %s lacks %q: %.300s", shell, want, out)
		}
	}
	// The completion of the first word offers the commands.
	out := must(t, "", "", "__complete", "")
	for _, c := range []string{"apply", "apis", "keys", "version", "config"} {
		if !strings.Contains(out, c+"\t") && !strings.Contains(out, c+"\n") {
			t.Errorf("completion lacks %s:\n%s", c, out)
		}
	}
}

const jwtAPI = `apis:
  - id: jwt-api
    listen_path: /jwt/
    upstream: {targets: ["http://127.0.0.1:8001"]}
    auth:
      mode: jwt
      jwt:
        algorithms: [HS256]
        keys: {secret: "${env:JWT_SECRET}"}
        policies: {default: [jwt-users]}
policies:
  - id: jwt-users
    access: [{api: jwt-api}]
`

// Secrets come from the environment at apply, and are masked in get,
// diff and export unless --show-secrets; export writes references.
func TestSecretsMaskedAndReferenced(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA"
	file := writeFile(t, "jwt.yaml", jwtAPI)

	// Without the variable nothing is written.
	r := sluicectl(t, s.URL, "", "apply", "-f", file)
	if r.code != ExitError || !strings.Contains(r.stderr, "jwt.yaml:9: apis[0].auth.jwt.keys.secret: environment variable JWT_SECRET is not set") {
		t.Fatalf("apply without JWT_SECRET: exit %d, %s", r.code, r.stderr)
	}
	withSecret := func(args ...string) result {
		return sluicectlEnv(t, s.URL, map[string]string{"JWT_SECRET": secret}, args...)
	}
	if r := withSecret("apply", "-f", file); r.code != 0 {
		t.Fatalf("apply: %d %s", r.code, r.stderr)
	}
	raw, _, err := s.Store.GetRaw(t.Context(), "api", "jwt-api")
	if err != nil || !strings.Contains(string(raw), secret) {
		t.Fatalf("stored API lacks the resolved secret: %s %v", raw, err)
	}
	for _, args := range [][]string{{"apis", "get", "jwt-api"}, {"apis", "get", "jwt-api", "-o", "json"}, {"apis", "list", "-o", "yaml"}, {"export"}} {
		out := must(t, s.URL, "", args...)
		if strings.Contains(out, secret) {
			t.Errorf("%v prints the secret:\n%s", args, out)
		}
	}
	if out := must(t, s.URL, "", "apis", "get", "jwt-api", "-o", "json", "--show-secrets"); !strings.Contains(out, secret) {
		t.Errorf("--show-secrets hides the secret:\n%s", out)
	}
	// The export references the secret; applying it with the variable set
	// changes nothing.
	r = sluicectl(t, s.URL, "", "export")
	if !strings.Contains(r.stdout, "${env:SLUICE_API_JWT_API_AUTH_JWT_KEYS_SECRET}") || !strings.Contains(r.stderr, "SLUICE_API_JWT_API_AUTH_JWT_KEYS_SECRET") {
		t.Fatalf("export:\n%s\n%s", r.stdout, r.stderr)
	}
	exported := writeFile(t, "export.yaml", r.stdout)
	if d := sluicectlEnv(t, s.URL, map[string]string{"SLUICE_API_JWT_API_AUTH_JWT_KEYS_SECRET": secret}, "diff", "-f", exported); d.code != 0 {
		t.Errorf("diff of the export: exit %d\n%s%s", d.code, d.stdout, d.stderr)
	}
	// A changed secret shows as a change, masked.
	d := sluicectlEnv(t, s.URL, map[string]string{"JWT_SECRET": strings.Replace(secret, "c2", "d2", 1)}, "diff", "-f", file)
	if d.code != ExitDiff || !strings.Contains(d.stdout, "~ auth.jwt.keys.secret") || strings.Contains(d.stdout, "d2VjcmV0") || strings.Contains(d.stdout, secret) {
		t.Errorf("diff of a changed secret: exit %d\n%s", d.code, d.stdout)
	}
	if d := withSecret("diff", "-f", file); d.code != 0 {
		t.Errorf("diff in sync: exit %d\n%s%s", d.code, d.stdout, d.stderr)
	}
}

// -f is repeatable and takes directories; problems name file and line.
func TestMultipleFilesAndDirectories(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("a.yaml", "apis:\n  - id: a\n    listen_path: /a/\n    upstream: {targets: ['http://127.0.0.1:1']}\n    auth: {mode: keyless}\n")
	write("b.yml", "apis:\n  - id: b\n    listen_path: /b/\n    upstream: {targets: ['http://127.0.0.1:1']}\n    auth: {mode: keyless}\npolicies:\n  - id: p\n    access: [{api: a}, {api: b}]\n")
	write("notes.txt", "not config")
	out := must(t, s.URL, "", "apply", "-f", dir)
	if !strings.Contains(out, "plan: 3 to create") {
		t.Fatalf("apply of a directory:\n%s", out)
	}
	extra := writeFile(t, "c.yaml", "apis:\n  - id: c\n    listen_path: /c/\n    upstream: {targets: ['http://127.0.0.1:1']}\n    auth: {mode: keyless}\n")
	if r := sluicectl(t, s.URL, "", "diff", "-f", dir, "-f", extra); r.code != ExitDiff || !strings.Contains(r.stdout, "+ create api c") {
		t.Errorf("diff of two inputs: exit %d\n%s", r.code, r.stdout)
	}
	// A clash between files is reported at the line of the second file.
	clash := writeFile(t, "clash.yaml", "# another team\napis:\n  - id: z\n    listen_path: /a/\n    upstream: {targets: ['http://127.0.0.1:1']}\n    auth: {mode: keyless}\n")
	r := sluicectl(t, s.URL, "", "apply", "-f", dir, "-f", clash)
	if r.code != ExitError || !strings.Contains(r.stderr, "clash.yaml:4: apis[2].listen_path:") {
		t.Errorf("clash across files: exit %d\n%s", r.code, r.stderr)
	}
	// A broken reference found by the syncer is reported at its line.
	dangling := writeFile(t, "dangling.yaml", "policies:\n  - id: q\n    access:\n      - api: nowhere\n")
	r = sluicectl(t, s.URL, "", "apply", "-f", dangling)
	if r.code != ExitError || !strings.Contains(r.stderr, "dangling.yaml:4: policies[0].access[0].api: unknown API \"nowhere\"") {
		t.Errorf("dangling reference: exit %d\n%s", r.code, r.stderr)
	}
	if r := sluicectl(t, s.URL, "", "apply", "-f", t.TempDir()); r.code != ExitError || !strings.Contains(r.stderr, "no .yaml, .yml or .json file") {
		t.Errorf("empty directory: exit %d %s", r.code, r.stderr)
	}
}

// Contexts: the config file names syncers; flags and environment win.
func TestContexts(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	home := t.TempDir()
	tokenFile := writeFile(t, "token", testToken+"\n")
	env := map[string]string{"XDG_CONFIG_HOME": home, "SLUICE_ADDR": "", "SLUICE_ADMIN_TOKEN": ""}
	run := func(args ...string) result { return sluicectlEnv(t, "", env, args...) }
	if r := run("config", "set-context", "dev", "--addr", s.URL, "--token-file", tokenFile); r.code != 0 {
		t.Fatalf("set-context: %d %s", r.code, r.stderr)
	}
	if r := run("config", "set-context", "broken", "--addr", "http://127.0.0.1:1"); r.code != 0 {
		t.Fatalf("set-context: %d %s", r.code, r.stderr)
	}
	if r := run("config", "use-context", "missing"); r.code != ExitError {
		t.Errorf("use-context of an unknown context: exit %d", r.code)
	}
	if r := run("apis", "list"); r.code != ExitError {
		t.Errorf("no current context reaches the default address: exit %d", r.code)
	}
	if r := run("config", "use-context", "dev"); r.code != 0 {
		t.Fatalf("use-context: %d %s", r.code, r.stderr)
	}
	if r := run("apis", "list"); r.code != 0 {
		t.Fatalf("apis list through the context: %d %s", r.code, r.stderr)
	}
	if r := run("--context", "broken", "apis", "list"); r.code != ExitError || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("--context broken: exit %d %s", r.code, r.stderr)
	}
	env["SLUICE_ADDR"] = "http://127.0.0.1:1"
	if r := run("apis", "list"); r.code != ExitError {
		t.Errorf("SLUICE_ADDR does not win over the context: exit %d", r.code)
	}
	out := run("config", "get-contexts").stdout
	if !strings.Contains(out, "*        dev") || !strings.Contains(out, "broken") {
		t.Errorf("get-contexts:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(home, "sluice", "config.yaml"))
	if err != nil || !strings.Contains(string(data), "current-context: dev") {
		t.Errorf("config file: %s %v", data, err)
	}
}

// export -o FILE picks the format from the extension.
func TestExportFormatByExtension(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	must(t, s.URL, "", "apply", "-f", "testdata/sluice.yaml")
	dir := t.TempDir()
	for name, isJSON := range map[string]bool{"out.json": true, "out.yaml": false} {
		p := filepath.Join(dir, name)
		must(t, s.URL, "", "export", "-o", p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := json.Valid(data); got != isJSON {
			t.Errorf("%s: JSON %v, want %v:\n%s", name, got, isJSON, data)
		}
	}
	if out := must(t, s.URL, "", "export", "-o", "json"); !json.Valid([]byte(out)) {
		t.Errorf("export -o json is not JSON")
	}
}

// get shows the ETag; update takes it back from the document or from
// --if-match, and delete from --if-match: a stale one is refused.
func TestETagsVisibleAndUsed(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	must(t, s.URL, "", "apply", "-f", "testdata/sluice.yaml")
	_, etag, err := s.Store.GetRaw(t.Context(), "api", "catalog")
	if err != nil {
		t.Fatal(err)
	}
	if out := must(t, s.URL, "", "apis", "get", "catalog"); !strings.Contains(out, "ETag: "+etag+"\n") {
		t.Errorf("get lacks the ETag:\n%s", out)
	}
	doc := must(t, s.URL, "", "apis", "get", "catalog", "-o", "json")
	var obj map[string]any
	if err := json.Unmarshal([]byte(doc), &obj); err != nil || obj["etag"] != etag {
		t.Fatalf("get -o json: etag %v, %v", obj["etag"], err)
	}
	if y := must(t, s.URL, "", "apis", "get", "catalog", "-o", "yaml"); !strings.Contains(y, "etag: '"+etag+"'") {
		t.Errorf("get -o yaml lacks the etag:\n%s", y)
	}
	// Someone changes the API after the read: the update of the read
	// document is refused.
	must(t, s.URL, "", "apis", "update", "catalog", "-f", writeFile(t, "c.yaml", "listen_path: /catalog/\nname: theirs\nupstream: {targets: ['http://127.0.0.1:8003']}\nauth: {mode: keyless}\n"))
	edited := strings.Replace(doc, `"listen_path": "/catalog/"`, `"listen_path": "/catalog/", "name": "mine"`, 1)
	r := sluicectl(t, s.URL, edited, "apis", "update", "catalog")
	if r.code != ExitError || !strings.Contains(r.stderr, "precondition_failed") {
		t.Errorf("update of a stale document: exit %d %s", r.code, r.stderr)
	}
	must(t, s.URL, "", "policies", "delete", "gold", "free")
	if r := sluicectl(t, s.URL, "", "apis", "delete", "catalog", "--if-match", etag); r.code != ExitError || !strings.Contains(r.stderr, "precondition_failed") {
		t.Errorf("delete with a stale --if-match: exit %d %s", r.code, r.stderr)
	}
	_, cur, _ := s.Store.GetRaw(t.Context(), "api", "catalog")
	if r := sluicectl(t, s.URL, edited, "apis", "update", "catalog", "--if-match", cur); r.code != 0 {
		t.Errorf("update with the current --if-match: exit %d %s", r.code, r.stderr)
	}
	_, cur, _ = s.Store.GetRaw(t.Context(), "api", "catalog")
	if r := sluicectl(t, s.URL, "", "apis", "delete", "catalog", "--if-match", cur); r.code != 0 {
		t.Errorf("delete with the current --if-match: exit %d %s", r.code, r.stderr)
	}
}

// nodes -o yaml shows every field -o json does.
func TestNodesYAMLMatchesJSON(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	now := time.Now().UTC().Truncate(time.Second)
	s.Nodes.Observe(bus.Heartbeat{ID: "gw-1", Address: "10.0.0.1:8080", Version: "1.2.3", ConfigVersion: 7, StartedAt: now.Add(-time.Hour), SentAt: now})
	var fromJSON, fromYAML []map[string]any
	if err := json.Unmarshal([]byte(must(t, s.URL, "", "nodes", "-o", "json")), &fromJSON); err != nil || len(fromJSON) != 1 {
		t.Fatalf("nodes -o json: %v %v", fromJSON, err)
	}
	if err := yaml.Unmarshal([]byte(must(t, s.URL, "", "nodes", "-o", "yaml")), &fromYAML); err != nil || len(fromYAML) != 1 {
		t.Fatalf("nodes -o yaml: %v %v", fromYAML, err)
	}
	for k := range fromJSON[0] {
		if _, ok := fromYAML[0][k]; !ok {
			t.Errorf("nodes -o yaml lacks %s", k)
		}
	}
	if _, ok := fromYAML[0]["started_at"]; !ok {
		t.Errorf("started_at missing: %v", fromYAML[0])
	}
}

// apply --select-tag manages one team's objects and leaves the others.
func TestSelectTag(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	api := func(id, tag string) string {
		return "  - id: " + id + "\n    tags: [" + tag + "]\n    listen_path: /" + id + "/\n    upstream: {targets: ['http://127.0.0.1:1']}\n    auth: {mode: keyless}\n"
	}
	must(t, s.URL, "", "apply", "-f", writeFile(t, "all.yaml", "apis:\n"+api("a1", "team-a")+api("a2", "team-a")+api("b1", "team-b")))
	teamA := writeFile(t, "a.yaml", "apis:\n"+api("a1", "team-a"))
	r := sluicectl(t, s.URL, "", "diff", "-f", teamA, "--prune", "--select-tag", "team-a")
	if r.code != ExitDiff || r.stdout != "- delete api a2\nplan: 0 to create, 0 to update, 1 to delete\n" {
		t.Errorf("diff --select-tag: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	must(t, s.URL, "", "apply", "-f", teamA, "--prune", "--select-tag", "team-a")
	if out := must(t, s.URL, "", "apis", "list"); !strings.Contains(out, "b1") || strings.Contains(out, "a2") {
		t.Errorf("after the team-a apply:\n%s", out)
	}
	r = sluicectl(t, s.URL, "", "apply", "-f", writeFile(t, "bad.yaml", "apis:\n"+api("b1", "team-a")), "--select-tag", "team-a")
	if r.code != ExitError || !strings.Contains(r.stderr, "bad.yaml:2: apis[0].id: api b1 is stored without tag \"team-a\"") {
		t.Errorf("taking another team's id: exit %d\n%s", r.code, r.stderr)
	}
}

// A usage error prints the message alone on stderr, not the help.
func TestUsageErrorPrintsNoHelp(t *testing.T) {
	t.Parallel()
	r := sluicectl(t, "http://127.0.0.1:1", "", "apis", "list", "--bogus")
	if r.code != ExitUsage || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A context's ca_file is trusted for an https:// syncer; without it the
// certificate is refused.
func TestContextCAFile(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	ca := testutil.NewCA(t)
	pair := ca.Server(t, "localhost")
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.API)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	home := t.TempDir()
	cfg := "current-context: tls\ncontexts:\n  - name: tls\n    addr: " + srv.URL + "\n    token: " + testToken + "\n    ca_file: " + ca.File + "\n  - name: no-ca\n    addr: " + srv.URL + "\n    token: " + testToken + "\n"
	if err := os.MkdirAll(filepath.Join(home, "sluice"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "sluice", "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_CONFIG_HOME": home, "SLUICE_ADDR": "", "SLUICE_ADMIN_TOKEN": ""}
	if r := sluicectlEnv(t, "", env, "status"); r.code != 0 {
		t.Errorf("status over TLS with the context's CA: exit %d %s", r.code, r.stderr)
	}
	if r := sluicectlEnv(t, "", env, "--context", "no-ca", "status"); r.code != ExitError || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("status over TLS without the CA: exit %d %s", r.code, r.stderr)
	}
	// Unknown fields in the config file are refused.
	if err := os.WriteFile(filepath.Join(home, "sluice", "config.yaml"), []byte("contexts:\n  - name: x\n    adress: y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := sluicectlEnv(t, "", env, "status"); r.code != ExitError || !strings.Contains(r.stderr, "adress") {
		t.Errorf("config with an unknown field: exit %d %s", r.code, r.stderr)
	}
}
