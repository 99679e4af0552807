package model

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseClientCertificate(t *testing.T) {
	t.Parallel()
	der := selfSigned(t)
	pemText := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	hash, kc, err := ParseClientCertificate(pemText)
	if err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(der)
	if kc.Fingerprint != hex.EncodeToString(fp[:]) || kc.Subject != "CN=client-1" {
		t.Fatalf("description %+v", kc)
	}
	// The record's hash is not the plain fingerprint, nor the hash of the
	// DER sent as an API key: certificates are public.
	if hash != HashCert(der) || hash == kc.Fingerprint || hash == HashKey(der) {
		t.Fatalf("hash %s shares a namespace with API keys", hash)
	}
	k := Key{ID: "c1", Hash: hash, Policies: []string{"p"}, Certificate: kc}
	if errs := k.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	for name, in := range map[string]string{
		"empty":     "",
		"not pem":   "hello",
		"key block": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"two":       string(pemText) + string(pemText),
		"garbage":   "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := ParseClientCertificate([]byte(in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseCertPool(t *testing.T) {
	t.Parallel()
	der := selfSigned(t)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if _, err := ParseCertPool([]byte(pemText + pemText)); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCertPool([]byte("nothing")); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("err %v", err)
	}
}

// FuzzParseClientCertificate: whatever the admin API is sent as a
// certificate, the parser returns an error or a record hash and a
// description consistent with the certificate; it never panics.
func FuzzParseClientCertificate(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIBkTCCATegAwIBAgIBATAKBggqhkjOPQQDAjAAMB4XDTI2MDEwMTAwMDAwMFoX\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hash, kc, err := ParseClientCertificate(data)
		if err != nil {
			if hash != "" || kc != nil {
				t.Fatal("error with a result")
			}
			return
		}
		block, _ := pem.Decode(data)
		fp := sha256.Sum256(block.Bytes)
		if hash != HashCert(block.Bytes) || kc.Fingerprint != hex.EncodeToString(fp[:]) {
			t.Fatalf("hash %s, fingerprint %s inconsistent with the DER", hash, kc.Fingerprint)
		}
	})
}
