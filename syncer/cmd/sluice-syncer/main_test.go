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
			var out bytes.Buffer
			err := run(append(tc.args, "--check-config"), &out, &out)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
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
	if err := run([]string{"--listen", ":9090", "--check-config"}, &out, &out); err != nil {
		t.Fatalf("tokens file alone: %v", err)
	}
	for _, path := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		t.Setenv("SLUICE_ADMIN_TOKENS_FILE", path)
		err := run([]string{"--listen", ":9090", "--check-config"}, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "admin_tokens_file") || strings.Contains(err.Error(), tok) {
			t.Errorf("%s: error %v, want one naming admin_tokens_file without the token", filepath.Base(path), err)
		}
	}
	t.Setenv("SLUICE_ADMIN_TOKENS_FILE", bad)
	if err := run([]string{"--listen", ":9090", "--check-config"}, &out, &out); err == nil || !strings.Contains(err.Error(), "tokens[0].role") {
		t.Errorf("bad role: %v", err)
	}
}

func TestHelpListsEnvironment(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--help"}, &out, &out); err == nil {
		t.Fatal("--help returned no ErrHelp")
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
	var out bytes.Buffer
	err := run([]string{"--listen", "nope", "--check-config"}, &out, &out)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, f := range []string{"listen", "admin_token", "node_ttl"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error lacks %s: %v", f, err)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run([]string{"--version"}, &out, &out); err != nil {
		t.Fatalf("--version: %v", err)
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
	var out bytes.Buffer
	err := run([]string{"--listen", ":99999", "--check-config"}, &out, &out)
	if err == nil {
		t.Fatalf("hostile config accepted: %s", out.String())
	}
	for _, want := range []string{
		"listen: port 99999 out of range 0-65535",
		"admin_token: must have at least 16 non-whitespace characters, has 0",
		"admin_token: must not start or end with whitespace",
		"redis.cluster_addrs[1]: port 99999 out of range 1-65535",
		`nats.url: server 1: "garbage": scheme must be nats, tls, ws or wss`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(out.String(), "configuration ok") {
		t.Errorf("printed ok: %s", out.String())
	}
}
