package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSSection: the tls section loads from YAML, its problems are named
// with their field paths, and the listeners may each be off but not both.
func TestTLSSection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	yaml := "listen: \"\"\ntls:\n  listen: \":8443\"\n  certificates:\n    - {cert_file: " + dir + "/missing.pem, key_file: " + dir + "/missing.key}\n  min_version: \"1.0\"\n  client_auth: require\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Validate().Error()
	for _, want := range []string{"tls.certificates[0].cert_file: cannot read", "tls.min_version: must be", "tls.client_ca_file: required"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %q", want, got)
		}
	}
	if strings.Contains(got, "listen: set listen") {
		t.Errorf("HTTPS alone refused: %q", got)
	}
	c.ResolveAdvertiseAddress()
	if !strings.HasSuffix(c.AdvertiseAddress, ":8443") {
		t.Errorf("advertise address %q without plain HTTP", c.AdvertiseAddress)
	}
	none := Default()
	none.Listen = ""
	if got := none.Validate().Error(); !strings.Contains(got, "listen: set listen, tls.listen or both") {
		t.Errorf("no listener accepted: %q", got)
	}
	same := Default()
	same.TLS.Listen, same.TLS.Certificates = same.Listen, nil
	if got := same.Validate().Error(); !strings.Contains(got, "tls.listen: must differ") {
		t.Errorf("same address accepted: %q", got)
	}
}
