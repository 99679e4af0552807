package proxy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestSameComparesTLS: a change of the TLS settings rebuilds the client;
// equal settings (another copy) reuse it.
func TestSameComparesTLS(t *testing.T) {
	t.Parallel()
	cfg := model.Upstream{Targets: []string{"https://127.0.0.1:1"}, TLS: &model.UpstreamTLS{ServerName: "a.test"}}
	u, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS.ServerName = "changed-in-place.test" // New kept its own copy
	for _, tc := range []struct {
		name string
		tls  *model.UpstreamTLS
		same bool
	}{
		{"equal copy", &model.UpstreamTLS{ServerName: "a.test"}, true},
		{"none", nil, false},
		{"server name", &model.UpstreamTLS{ServerName: "b.test"}, false},
		{"insecure", &model.UpstreamTLS{ServerName: "a.test", InsecureSkipVerify: true}, false},
		{"ca", &model.UpstreamTLS{ServerName: "a.test", CAFile: "/ca.pem"}, false},
	} {
		c := model.Upstream{Targets: cfg.Targets, TLS: tc.tls}
		if got := u.Same(c, Options{}); got != tc.same {
			t.Errorf("%s: Same %v, want %v", tc.name, got, tc.same)
		}
	}
	plain, err := New(model.Upstream{Targets: cfg.Targets}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !plain.Same(model.Upstream{Targets: cfg.Targets}, Options{}) || plain.Same(model.Upstream{Targets: cfg.Targets, TLS: &model.UpstreamTLS{}}, Options{}) {
		t.Fatal("Same without TLS settings")
	}
}

// TestClientTLSErrors: unreadable files fail the build, naming the field.
func TestClientTLSErrors(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	dir := t.TempDir()
	cert, key := ca.Client(t, "gw").Write(t, dir, "gw")
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		tls  model.UpstreamTLS
		want string
	}{
		{"missing ca", model.UpstreamTLS{CAFile: missing}, "upstream.tls.ca_file"},
		{"ca not pem", model.UpstreamTLS{CAFile: key}, "no PEM certificate"},
		{"key mismatch", model.UpstreamTLS{CertFile: cert, KeyFile: cert}, "upstream.tls.cert_file"},
	} {
		_, err := New(model.Upstream{Targets: []string{"https://127.0.0.1:1"}, TLS: &tc.tls}, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to name %q", tc.name, err, tc.want)
		}
	}
}
