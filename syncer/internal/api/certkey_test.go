package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

func clientCertPEM(t *testing.T) (string, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "billing-service"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), der
}

// TestCertificateKeys: a key created from a PEM certificate is stored
// under the certificate's hash with no secret returned; it cannot be
// rotated nor given another certificate; GET-edit-PUT keeps it.
func TestCertificateKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", apiJSON("orders", "/orders/"))
	e.must(201, "POST", "/v1/policies", policyJSON("gold", "orders"))
	certPEM, der := clientCertPEM(t)
	body, _ := json.Marshal(map[string]any{"id": "billing", "policies": []string{"gold"}, "certificate": certPEM})
	r := e.must(201, "POST", "/v1/keys", string(body))
	m := r.json(t)
	if _, ok := m["key"]; ok {
		t.Fatalf("a certificate key returned a secret: %s", r.body)
	}
	fp := sha256.Sum256(der)
	cc, _ := m["client_certificate"].(map[string]any)
	if m["hash"] != model.HashCert(der) || cc["fingerprint"] != hex.EncodeToString(fp[:]) || cc["subject"] != "CN=billing-service" {
		t.Fatalf("stored %s", r.body)
	}
	stored, err := e.store.KeyByHash(t.Context(), model.HashCert(der))
	if err != nil || stored.ID != "billing" || stored.Certificate == nil {
		t.Fatalf("store: %+v %v", stored, err)
	}
	// The same certificate twice is a conflict, like the same key.
	body2, _ := json.Marshal(map[string]any{"id": "billing2", "policies": []string{"gold"}, "certificate": certPEM})
	e.must(409, "POST", "/v1/keys", string(body2))
	for name, tc := range map[string]struct {
		body   map[string]any
		fields []string
	}{
		"not pem":   {map[string]any{"policies": []string{"gold"}, "certificate": "hello"}, []string{"certificate"}},
		"with key":  {map[string]any{"policies": []string{"gold"}, "certificate": certPEM, "key": "chosen-key-0123456789"}, []string{"key"}},
		"two certs": {map[string]any{"policies": []string{"gold"}, "certificate": certPEM + certPEM}, []string{"certificate"}},
	} {
		b, _ := json.Marshal(tc.body)
		got := e.must(400, "POST", "/v1/keys", string(b)).fields(t)
		if len(got) != len(tc.fields) || got[0] != tc.fields[0] {
			t.Errorf("%s: fields %v, want %v", name, got, tc.fields)
		}
	}
	if f := e.must(400, "POST", "/v1/keys/billing/rotate", "").fields(t); len(f) != 1 || f[0] != "id" {
		t.Fatalf("rotate fields %v", f)
	}
	e.must(200, "PUT", "/v1/keys/billing", string(e.must(200, "GET", "/v1/keys/billing", "").body))
	var k map[string]any
	_ = json.Unmarshal(e.must(200, "GET", "/v1/keys/billing", "").body, &k)
	k["client_certificate"].(map[string]any)["fingerprint"] = "00"
	b, _ := json.Marshal(k)
	e.must(400, "PUT", "/v1/keys/billing", string(b))
}
