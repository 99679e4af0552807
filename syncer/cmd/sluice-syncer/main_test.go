package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdminTokenRule(t *testing.T) {
	cases := []struct {
		name, token string
		args        []string
		wantErr     string
	}{
		{"token given", "0123456789abcdef0", []string{"--listen", ":7460"}, ""},
		{"no token anywhere", "", []string{"--listen", ":7460"}, "no admin token"},
		{"insecure dev on all interfaces", "", []string{"--listen", ":7460", "--insecure-dev"}, "loopback"},
		{"insecure dev on loopback", "", []string{"--listen", "127.0.0.1:7460", "--insecure-dev"}, ""},
		{"loopback without the flag", "", []string{"--listen", "127.0.0.1:7460"}, "--insecure-dev"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SLUICE_ADMIN_TOKEN", tc.token)
			var out, errb bytes.Buffer
			code := run(append(tc.args, "--check-config"), &out, &errb)
			switch {
			case tc.wantErr == "" && code != 0:
				t.Fatalf("exit %d: %s", code, errb.String())
			case tc.wantErr != "" && (code != 3 || !strings.Contains(errb.String(), tc.wantErr)):
				t.Fatalf("exit %d %q, want 3 and a message mentioning %q", code, errb.String(), tc.wantErr)
			}
		})
	}
}

// A tokens file alone satisfies the token rule; a bad one is refused by
// --check-config with its field paths, and never with a token in the message.
func TestAdminTokensFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	const tok = "operator-token-0123456789"
	if err := os.WriteFile(good, []byte("tokens:\n  - {name: ci, role: operator, token: "+tok+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("tokens:\n  - {name: ci, role: root, token: "+tok+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	t.Setenv("SLUICE_ADMIN_TOKENS_FILE", good)
	var out bytes.Buffer
	if code := run([]string{"--listen", ":9090", "--check-config"}, &out, &out); code != 0 {
		t.Fatalf("tokens file alone: exit %d: %s", code, out.String())
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		t.Setenv("SLUICE_ADMIN_TOKENS_FILE", path)
		var errb bytes.Buffer
		code := run([]string{"--listen", ":9090", "--check-config"}, &out, &errb)
		if code != 3 || !strings.Contains(errb.String(), "admin_tokens_file") || strings.Contains(errb.String(), tok) {
			t.Errorf("%s: exit %d %q, want 3 naming admin_tokens_file without the token", filepath.Base(path), code, errb.String())
		}
	}
	t.Setenv("SLUICE_ADMIN_TOKENS_FILE", bad)
	var errb bytes.Buffer
	if code := run([]string{"--listen", ":9090", "--check-config"}, &out, &errb); code != 3 || !strings.Contains(errb.String(), "tokens[0].role") {
		t.Errorf("bad role: exit %d %q", code, errb.String())
	}
}

func TestHelpListsEnvironment(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 || errb.Len() > 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, errb.String())
	}
	for _, v := range []string{"SLUICE_ADMIN_TOKEN", "SLUICE_REDIS_ADDR", "SLUICE_NATS_URL", "SLUICE_NODE_TTL", "insecure-dev", "check-config"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("--help lacks %s", v)
		}
	}
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	t.Setenv("SLUICE_ADMIN_TOKEN", "short")
	t.Setenv("SLUICE_NODE_TTL", "1ms")
	var out, errb bytes.Buffer
	if code := run([]string{"--listen", "nope", "--check-config"}, &out, &errb); code != 3 {
		t.Fatalf("bad config: exit %d, want 3", code)
	}
	for _, f := range []string{"listen: ", "admin_token: ", "node_ttl: "} {
		if !strings.Contains(errb.String(), "\n"+f) && !strings.HasPrefix(errb.String(), f) {
			t.Errorf("no line starts with %q:\n%s", f, errb.String())
		}
	}
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run([]string{"--version"}, &out, &out); code != 0 {
		t.Fatalf("--version: exit %d", code)
	}
	if line := out.String(); !strings.HasPrefix(line, "sluice-syncer ") || !strings.Contains(line, "commit ") || !strings.Contains(line, "go1.") {
		t.Fatalf("--version printed %q", line)
	}
}

// TestCheckConfigRefusesHostileValues runs --check-config with values that
// used to pass: each problem is reported with its field path, all at once.
func TestCheckConfigRefusesHostileValues(t *testing.T) {
	t.Setenv("SLUICE_ADMIN_TOKEN", strings.Repeat(" ", 16))
	t.Setenv("SLUICE_REDIS_CLUSTER_ADDRS", "a:7000,b:99999")
	t.Setenv("SLUICE_NATS_URL", "garbage")
	var out, errb bytes.Buffer
	if code := run([]string{"--listen", ":99999", "--check-config"}, &out, &errb); code != 3 {
		t.Fatalf("hostile config: exit %d, want 3: %s", code, out.String())
	}
	for _, want := range []string{
		"listen: port 99999 out of range 0-65535",
		"admin_token: must have at least 16 non-whitespace characters, has 0",
		"admin_token: must not start or end with whitespace",
		"redis.cluster_addrs[1]: port 99999 out of range 1-65535",
		`nats.url: server 1: "garbage": scheme must be nats, tls, ws or wss`,
	} {
		if !strings.Contains(errb.String(), "\n"+want) && !strings.HasPrefix(errb.String(), want) {
			t.Errorf("no line starts with %q:\n%s", want, errb.String())
		}
	}
	if strings.Contains(out.String(), "configuration ok") {
		t.Errorf("printed ok: %s", out.String())
	}
}
