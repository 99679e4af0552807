package server

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluicegw/sluice/gateway/internal/edgetls"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// edge is a node's HTTPS setup in a test: a CA, the files of its server
// certificates, and the client CA file.
type edge struct {
	ca     *testutil.CA
	dir    string
	caFile string
}

func newEdge(t testing.TB) *edge {
	ca := testutil.NewCA(t)
	e := &edge{ca: ca, dir: t.TempDir()}
	e.caFile = filepath.Join(e.dir, "client-ca.pem")
	testutil.WriteFile(t, e.caFile, ca.PEM)
	return e
}

// withTLS serves HTTPS on a free port with the given certificate files,
// checked for changes every 20ms.
func withTLS(certs []edgetls.Certificate, mut ...func(*edgetls.Options)) func(*Options) {
	return func(o *Options) {
		o.TLS = edgetls.Options{Listen: "127.0.0.1:0", Certificates: certs, ReloadInterval: 20 * time.Millisecond}.WithDefaults()
		for _, m := range mut {
			m(&o.TLS)
		}
	}
}

// httpsClient trusts roots, asks for serverName and presents cert (when
// not nil); keepAlive false opens a connection per request.
func httpsClient(roots *x509.CertPool, serverName string, cert *tls.Certificate, keepAlive bool) *http.Client {
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName}
	if cert != nil {
		c := *cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: cfg, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 4, ForceAttemptHTTP2: false,
	}}
}

// served returns the common name of the certificate the node's HTTPS
// listener presents for serverName, on a new connection.
func served(t testing.TB, n *node, roots *x509.CertPool, serverName string) (string, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.srv.TLSAddr(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName + "#" + c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// counter is the value of the counter name with the given labels (name=value
// pairs) in reg, 0 when absent.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func httpsURL(n *node) string { return "https://" + n.srv.TLSAddr() }

type httptestServer = httptest.Server

func newTLSUpstream(h http.HandlerFunc, cfg *tls.Config) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	s.TLS = cfg
	s.StartTLS()
	return s
}
