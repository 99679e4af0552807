package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// TestKeysCreateCert: --cert sends the PEM certificate; the key is stored
// under its hash and no secret is printed.
func TestKeysCreateCert(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	must(t, s.URL, `{"id":"orders","listen_path":"/orders/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"mtls"}}`, "apis", "create")
	must(t, s.URL, `{"id":"gold","access":[{"api":"orders"}]}`, "policies", "create")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sluicectl(t, s.URL, "", "keys", "create", "--id", "svc", "--policy", "gold", "--cert", file)
	if r.code != 0 || strings.Contains(r.stdout, "key: ") || strings.Contains(r.stderr, "shown only once") || !strings.Contains(r.stdout, "cert:") {
		t.Fatalf("keys create --cert: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var got model.Key
	if err := json.Unmarshal([]byte(must(t, s.URL, "", "keys", "get", "svc", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Hash != model.HashCert(der) || got.Certificate == nil || got.Certificate.Subject != "CN=svc" {
		t.Fatalf("stored %+v", got)
	}
	// Update by flags keeps the certificate (GET-edit-PUT).
	must(t, s.URL, "", "keys", "update", "svc", "--alias", "billing")
	for _, args := range [][]string{
		{"keys", "create", "--policy", "gold", "--cert", filepath.Join(t.TempDir(), "missing.pem")},
		{"keys", "create", "--policy", "gold", "--cert", file, "--key", "chosen-key-0123456789"},
	} {
		if r := sluicectl(t, s.URL, "", args...); r.code == 0 || !strings.Contains(r.stderr, "--") {
			t.Errorf("%v: exit %d, %s", args, r.code, r.stderr)
		}
	}
}
