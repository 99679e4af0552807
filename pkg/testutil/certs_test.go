package testutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestCAIssuesWhatItsPoolVerifies(t *testing.T) {
	t.Parallel()
	ca, other := NewCA(t), NewCA(t)
	if ca.cert.Subject.CommonName == other.cert.Subject.CommonName {
		t.Fatalf("two CAs named alike: %q", ca.cert.Subject.CommonName)
	}
	if data, err := os.ReadFile(ca.File); err != nil || !bytes.Equal(data, ca.PEM) {
		t.Fatalf("CA file %s does not hold the CA's PEM: %v", ca.File, err)
	}
	srv, dflt, cl := ca.Server(t, "a.test", "*.b.test", "10.1.2.3"), ca.Server(t), ca.Client(t, "alice")
	for _, tc := range []struct {
		name  string
		p     Pair
		host  string
		usage x509.ExtKeyUsage
		cn    string
	}{
		{"server, first name", srv, "a.test", x509.ExtKeyUsageServerAuth, "a.test"},
		{"server, wildcard", srv, "x.b.test", x509.ExtKeyUsageServerAuth, "a.test"},
		{"server, IP name", srv, "10.1.2.3", x509.ExtKeyUsageServerAuth, "a.test"},
		{"server, loopback always", srv, "127.0.0.1", x509.ExtKeyUsageServerAuth, "a.test"},
		{"server without names", dflt, "localhost", x509.ExtKeyUsageServerAuth, "localhost"},
		{"server without names, ::1", dflt, "::1", x509.ExtKeyUsageServerAuth, "localhost"},
		{"client", cl, "", x509.ExtKeyUsageClientAuth, "alice"},
	} {
		opts := x509.VerifyOptions{DNSName: tc.host, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{tc.usage}}
		if _, err := tc.p.Leaf.Verify(opts); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.p.Leaf.Subject.CommonName != tc.cn {
			t.Errorf("%s: common name %q, want %q", tc.name, tc.p.Leaf.Subject.CommonName, tc.cn)
		}
		opts.Roots = other.Pool()
		if _, err := tc.p.Leaf.Verify(opts); err == nil {
			t.Errorf("%s: verified by another CA", tc.name)
		}
		if _, err := tls.LoadX509KeyPair(tc.p.CertFile, tc.p.KeyFile); err != nil {
			t.Errorf("%s: files: %v", tc.name, err)
		}
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{DNSName: "b.test", Roots: ca.Pool()}); err == nil {
		t.Error("*.b.test verified for b.test")
	}
	if srv.Leaf.SerialNumber.Cmp(dflt.Leaf.SerialNumber) == 0 {
		t.Error("two certificates with one serial number")
	}
}

func TestPairWriteReplacesFiles(t *testing.T) {
	t.Parallel()
	ca := NewCA(t)
	dir := t.TempDir()
	first, second := ca.Server(t, "a.test"), ca.Server(t, "a.test")
	c1, k1 := first.Write(t, dir, "a")
	c2, k2 := second.Write(t, dir, "a")
	if c1 != c2 || k1 != k2 || c1 != filepath.Join(dir, "a.pem") || k1 != filepath.Join(dir, "a.key") {
		t.Fatalf("paths %s %s then %s %s", c1, k1, c2, k2)
	}
	pair, err := tls.LoadX509KeyPair(c2, k2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pair.Certificate[0], second.Leaf.Raw) {
		t.Fatal("the files hold the first certificate, not the second")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
