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
	if line := out.String(); !strings.HasPrefix(line, "sluice-gateway ") || !strings.Contains(line, "commit ") || !strings.Contains(line, "go1.") {
		t.Fatalf("--version printed %q", line)
	}
}

// TestCheckConfigRefusesHostileAddresses runs --check-config with
// addresses that used to pass: a non-zero exit and every problem printed
// with its field path. (redis.addr is ignored when redis.cluster_addrs is
// set; the analytics test checks an address without a port.)
func TestCheckConfigRefusesHostileAddresses(t *testing.T) {
	t.Setenv("SLUICE_REDIS_CLUSTER_ADDRS", "a:7000,b:99999")
	t.Setenv("SLUICE_NATS_URL", "garbage")
	var out, errb bytes.Buffer
	if code := run([]string{"--check-config", "--listen", ":99999", "--ops-listen", "bad host:9080"}, &out, &errb); code == 0 {
		t.Fatalf("hostile config accepted: %s", out.String())
	}
	for _, want := range []string{
		"listen: port 99999 out of range 0-65535",
		`ops_listen: host "bad host" is not a valid host name`,
		"redis.cluster_addrs[1]: port 99999 out of range 1-65535",
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
