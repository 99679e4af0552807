package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority made for one test. Its certificate is in a
// PEM file (File) for clients and servers to trust, and in memory (PEM,
// Pool) for tests that build their TLS configurations themselves.
type CA struct {
	File string // PEM certificate of the CA
	PEM  []byte // the same certificate
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    atomic.Int64 // last serial number issued
}

// Pair is a certificate and its key, issued by a CA: as PEM files in the
// CA's temporary folder, as PEM, parsed (Leaf) and ready for a TLS
// configuration (TLS).
type Pair struct {
	CertFile, KeyFile string
	CertPEM, KeyPEM   []byte
	Leaf              *x509.Certificate
	TLS               tls.Certificate
}

// validity of the certificates a CA makes: from an hour ago (clocks a
// little apart still agree) to a day ahead (longer than any test run).
const (
	notBefore = -time.Hour
	notAfter  = 24 * time.Hour
)

// NewCA makes a certificate authority, its files in a temporary folder.
// Its subject names it uniquely, so two CAs of one test are told apart in
// verification errors.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca := &CA{dir: t.TempDir()}
	ca.n.Store(1)
	ca.key = newKey(t)
	var id [4]byte
	_, _ = rand.Read(id[:])
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA " + hex.EncodeToString(id[:])},
		NotBefore: time.Now().Add(notBefore), NotAfter: time.Now().Add(notAfter),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	if ca.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	ca.PEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca.File = filepath.Join(ca.dir, "ca.pem")
	WriteFile(t, ca.File, ca.PEM)
	return ca
}

// Pool returns a certificate pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Server issues a server certificate for names: DNS names (wildcards
// allowed), or IP addresses when they parse as one; with no names, for
// localhost. It is valid for 127.0.0.1 and ::1 too, and its subject common
// name is the first name.
func (ca *CA) Server(t testing.TB, names ...string) Pair {
	t.Helper()
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	tmpl := ca.template(names[0], x509.ExtKeyUsageServerAuth)
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return ca.issue(t, tmpl)
}

// Client issues a client certificate with the common name cn.
func (ca *CA) Client(t testing.TB, cn string) Pair {
	t.Helper()
	return ca.issue(t, ca.template(cn, x509.ExtKeyUsageClientAuth))
}

func (ca *CA) template(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(ca.n.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(notBefore), NotAfter: time.Now().Add(notAfter),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
}

func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate) Pair {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("issue %s: %v", tmpl.Subject.CommonName, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
	if p.Leaf, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	if p.TLS, err = tls.X509KeyPair(p.CertPEM, p.KeyPEM); err != nil {
		t.Fatal(err)
	}
	p.CertFile, p.KeyFile = p.Write(t, ca.dir, "issued-"+tmpl.SerialNumber.String())
	return p
}

// Write writes the certificate and key as dir/name.pem and dir/name.key,
// replacing each atomically (WriteFile), and returns their paths: a test
// of certificate reloading swaps a served pair this way.
func (p Pair) Write(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	WriteFile(t, certFile, p.CertPEM)
	WriteFile(t, keyFile, p.KeyPEM)
	return certFile, keyFile
}

// WriteFile replaces path with data atomically (a write then a rename), so
// a process watching the file never reads it half written.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
