package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if line := out.String(); !strings.HasPrefix(line, "sluice-analytics ") || !strings.Contains(line, "commit ") || !strings.Contains(line, "go1.") {
		t.Fatalf("--version printed %q", line)
	}
}

// TestCheckConfigRefusesHostileAddresses runs --check-config with values
// that used to pass (a Redis address without a port, a NATS URL that is
// not one, a port out of range): a non-zero exit and every problem printed
// with its field path.
func TestCheckConfigRefusesHostileAddresses(t *testing.T) {
	t.Setenv("SLUICE_REDIS_ADDR", "redis")
	t.Setenv("SLUICE_NATS_URL", "garbage")
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config", "--listen", ":99999"}, &out, &errb); code == 0 {
		t.Fatalf("hostile config accepted: %s", out.String())
	}
	for _, want := range []string{
		"listen: port 99999 out of range 0-65535",
		`redis.addr: "redis" has no port`,
		`nats.url: server 1: "garbage": scheme must be nats, tls, ws or wss`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, errb.String())
		}
	}
	if out.Len() > 0 {
		t.Errorf("stdout: %s", out.String())
	}
}

// The defaults plus a token are a valid configuration; without a token
// (and without auth.disabled) the worker refuses to start.
func TestCheckConfigAcceptsDefaults(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "auth: no token") {
		t.Fatalf("no token: exit %d: %s%s", code, out.String(), errb.String())
	}
	t.Setenv("SLUICE_AUTH_TOKEN", "analytics-token-0123456789")
	out.Reset()
	errb.Reset()
	if code := run([]string{"--check-config"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "configuration ok") {
		t.Fatalf("defaults: exit %d: %s%s", code, out.String(), errb.String())
	}
}
