package edgetls

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestValidateNamesFields(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	goodCert, goodKey := ca.Server(t, "a.test").Write(t, dir, "a")
	_, otherKey := ca.Server(t, "b.test").Write(t, dir, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	testutil.WriteFile(t, garbage, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"valid", Options{Listen: ":8443", Certificates: []Certificate{{goodCert, goodKey}}}, nil},
		{"off", Options{}, nil},
		{"no certificates", Options{Listen: ":8443"}, []string{"certificates: at least one"}},
		{"missing file", Options{Listen: ":8443", Certificates: []Certificate{{missing, goodKey}}},
			[]string{"certificates[0].cert_file: cannot read"}},
		{"unreadable key", Options{Listen: ":8443", Certificates: []Certificate{{goodCert, garbage}}},
			[]string{"certificates[0].key_file: " + garbage + ": private key does not parse"}},
		{"key is a certificate", Options{Listen: ":8443", Certificates: []Certificate{{goodCert, goodCert}}},
			[]string{"certificates[0].key_file: " + goodCert + ": no PEM private key block"}},
		{"mismatch", Options{Listen: ":8443", Certificates: []Certificate{{goodCert, goodKey}, {goodCert, otherKey}}},
			[]string{"certificates[1]: certificate " + goodCert + " does not match key " + otherKey}},
		{"settings", Options{Listen: "8443", MinVersion: "1.1", ClientAuth: "maybe", Certificates: []Certificate{{goodCert, goodKey}}},
			[]string{"listen: must be [host]:port", "min_version: must be \"1.2\" or \"1.3\"", "client_auth: must be"}},
		{"verify without ca", Options{Listen: ":8443", ClientAuth: ClientAuthRequire, Certificates: []Certificate{{goodCert, goodKey}}},
			[]string{"client_ca_file: required when client_auth is require"}},
		{"ca not pem", Options{Listen: ":8443", ClientAuth: ClientAuthVerifyIfGiven, ClientCAFile: goodKey, Certificates: []Certificate{{goodCert, goodKey}}},
			[]string{"client_ca_file: " + goodKey + ": no PEM certificate found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.opts.WithDefaults()
			if tt.name == "settings" {
				o.MinVersion, o.ClientAuth = tt.opts.MinVersion, tt.opts.ClientAuth
			}
			errs := o.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d: %v", len(errs), len(tt.want), errs)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].String(), w) {
					t.Errorf("problem %d: %q, want prefix %q", i, errs[i].String(), w)
				}
			}
		})
	}
}

func TestPickBySNI(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	c1, k1 := ca.Server(t, "a.test", "A2.test").Write(t, dir, "a")
	c2, k2 := ca.Server(t, "*.b.test").Write(t, dir, "b")
	e := newEdge(t, Options{Listen: ":0", Certificates: []Certificate{{c1, k1}, {c2, k2}}}, prometheus.NewRegistry())
	set := e.set.Load()
	for _, tt := range []struct{ name, want string }{
		{"", "a.test"}, {"a.test", "a.test"}, {"a2.TEST.", "a.test"}, {"x.b.test", "*.b.test"},
		{"b.test", ""}, {"y.x.b.test", ""}, {"other.test", ""},
	} {
		c, err := set.pick(&tls.ClientHelloInfo{ServerName: tt.name})
		switch {
		case tt.want == "" && err != ErrUnknownSNI:
			t.Errorf("%q: got %v, want ErrUnknownSNI", tt.name, err)
		case tt.want != "" && (err != nil || c.Leaf.Subject.CommonName != tt.want):
			t.Errorf("%q: got %v, %v, want %s", tt.name, c, err, tt.want)
		}
	}
}

func newEdge(t *testing.T, o Options, reg prometheus.Registerer) *Edge {
	t.Helper()
	e, err := New(o, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCheckKeepsServingOnBadFiles: a bad new file leaves the current
// certificates in place, counted once; a good one replaces them.
func TestCheckKeepsServingOnBadFiles(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "a.test").Write(t, dir, "a")
	reg := prometheus.NewRegistry()
	e := newEdge(t, Options{Listen: ":0", Certificates: []Certificate{{certFile, keyFile}}}, reg)
	first := e.set.Load()
	if e.Check() {
		t.Fatal("unchanged files reloaded")
	}
	// A new certificate whose key is not there yet, then a missing key.
	testutil.WriteFile(t, certFile, ca.Server(t, "a.test").CertPEM)
	for i := 0; i < 3; i++ {
		if e.Check() {
			t.Fatal("mismatched pair installed")
		}
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if e.Check() || e.set.Load() != first {
		t.Fatal("a missing key replaced the set")
	}
	if got := promtest.ToFloat64(e.m.reloadErrors); got != 2 {
		t.Fatalf("reload errors %v, want 2 (one per bad content)", got)
	}
	// Back to the serving files, then the key missing again: counted anew.
	testutil.WriteFile(t, certFile, first.files[0])
	testutil.WriteFile(t, keyFile, first.files[1])
	if e.Check() {
		t.Fatal("the serving files reloaded")
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	e.Check()
	if got := promtest.ToFloat64(e.m.reloadErrors); got != 3 {
		t.Fatalf("reload errors %v, want 3 (a failure after a return to the serving files counts)", got)
	}
	next := ca.Server(t, "a.test")
	next.Write(t, dir, "a")
	if !e.Check() {
		t.Fatal("good files not installed")
	}
	if leaf := e.set.Load().def.Leaf; !leaf.Equal(next.Leaf) {
		t.Fatal("the new certificate is not served")
	}
	if got := promtest.ToFloat64(e.m.reloads); got != 1 {
		t.Fatalf("reloads %v, want 1", got)
	}
}

// serve runs a fasthttp server on an Edge listener answering "https" when
// it sees a TLS connection.
func serve(t *testing.T, e *Edge) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{ReadTimeout: 5 * time.Second, Logger: quiet{}, Handler: func(ctx *fasthttp.RequestCtx) {
		cs := ctx.TLSConnectionState()
		switch {
		case cs == nil:
		case string(ctx.Path()) == "/verified" && len(cs.VerifiedChains) > 0:
			ctx.SetBodyString("verified")
		case ctx.IsTLS():
			ctx.SetBodyString("https")
		}
	}}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(e.NewListener(ln)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
		<-done
	})
	return ln.Addr().String()
}

// TestHandshakeErrorsCounted: each failed handshake is counted by reason,
// and the listener serves on.
func TestHandshakeErrorsCounted(t *testing.T) {
	t.Parallel()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "a.test").Write(t, dir, "a")
	caFile := filepath.Join(dir, "ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM)
	reg := prometheus.NewRegistry()
	e := newEdge(t, Options{Listen: ":0", Certificates: []Certificate{{certFile, keyFile}},
		ClientAuth: ClientAuthVerifyIfGiven, ClientCAFile: caFile}, reg)
	addr := serve(t, e)
	good := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()}
	stranger := other.Client(t, "stranger").TLS
	tests := []struct {
		reason string
		dial   func() error
	}{
		{ReasonUnknownSNI, func() error { return handshake(addr, &tls.Config{ServerName: "nope.test", RootCAs: ca.Pool()}) }},
		{ReasonProtocolVersion, func() error {
			return handshake(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		}},
		{ReasonBadClientCert, func() error {
			c := good.Clone()
			// Sent although the server names other acceptable CAs.
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &stranger, nil }
			c.MaxVersion = tls.VersionTLS12 // the refusal then reaches the client in its handshake
			return handshake(addr, c)
		}},
		{ReasonNotTLS, func() error { return plainRequest(addr) }},
		{ReasonClientAlert, func() error { return handshake(addr, &tls.Config{ServerName: "a.test"}) }}, // system roots: rejects
		{ReasonClosed, func() error {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return nil
			}
			_, _ = c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x40})
			return c.Close()
		}},
	}
	for _, tt := range tests {
		// Sequential: each case reads its own counter while others run.
		before := promtest.ToFloat64(e.m.handshake[tt.reason])
		_ = tt.dial()
		testutil.WaitFor(t, 5*time.Second, func() error {
			if got := promtest.ToFloat64(e.m.handshake[tt.reason]); got != before+1 {
				return errorf("%s: counted %v, want %v", tt.reason, got, before+1)
			}
			return nil
		})
		if err := handshake(addr, good); err != nil {
			t.Fatalf("after %s the listener does not serve: %v", tt.reason, err)
		}
	}
	testutil.LintMetrics(t, gather(t, reg))
}

func handshake(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		return errorf("status line %q", line)
	}
	return nil
}

func plainRequest(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// quiet drops fasthttp's log lines: failed handshakes are expected here.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

func TestCertificatesFromText(t *testing.T) {
	t.Parallel()
	var cs Certificates
	if err := cs.UnmarshalText([]byte("a.pem:a.key, b.pem:b.key")); err != nil || len(cs) != 2 || cs[1] != (Certificate{"b.pem", "b.key"}) {
		t.Fatalf("%+v %v", cs, err)
	}
	for _, bad := range []string{"a.pem", "a.pem:", ":a.key"} {
		if err := cs.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestResumedSessionRecheckedAfterCAChange: a client whose CA is removed
// from client_ca_file cannot carry its earlier verification into a new
// connection by resuming a TLS session. crypto/tls checks a resumed
// session's chains against the ClientCAs of the config the handshake gets
// (the current set's); this test keeps it that way.
func TestResumedSessionRecheckedAfterCAChange(t *testing.T) {
	t.Parallel()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "a.test").Write(t, dir, "a")
	caFile := filepath.Join(dir, "ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM)
	e := newEdge(t, Options{Listen: ":0", Certificates: []Certificate{{certFile, keyFile}},
		ClientAuth: ClientAuthVerifyIfGiven, ClientCAFile: caFile}, prometheus.NewRegistry())
	addr := serve(t, e)
	alice := ca.Client(t, "alice").TLS
	cfg := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(4),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &alice, nil }}
	if resumed, err := resumingRequest(addr, cfg); err != nil || resumed {
		t.Fatalf("first connection: resumed %v, %v", resumed, err)
	}
	if resumed, err := resumingRequest(addr, cfg); err != nil || !resumed {
		t.Fatalf("second connection: resumed %v, %v (the test needs resumption)", resumed, err)
	}
	testutil.WriteFile(t, caFile, other.PEM)
	if !e.Check() {
		t.Fatal("client CA change not loaded")
	}
	before := promtest.ToFloat64(e.m.handshake[ReasonBadClientCert])
	if resumed, err := resumingRequest(addr, cfg); err == nil {
		t.Fatalf("a certificate of a removed CA was served (resumed %v)", resumed)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if got := promtest.ToFloat64(e.m.handshake[ReasonBadClientCert]); got != before+1 {
			return errorf("bad_client_certificate counted %v, want %v", got, before+1)
		}
		return nil
	})
}

// resumingRequest sends one request on a new connection and reports
// whether the TLS session was resumed and whether the server verified the
// client's certificate (an error if not).
func resumingRequest(addr string, cfg *tls.Config) (bool, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /verified HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")); err != nil {
		return false, err
	}
	body, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		return false, err
	}
	if !strings.HasSuffix(string(body), "verified") {
		return false, errorf("answer %q", body)
	}
	return c.ConnectionState().DidResume, nil
}
