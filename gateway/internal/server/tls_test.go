package server

import (
	"crypto/tls"
	"encoding/json"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/edgetls"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// get sends GET url through cl and decodes the answer like do.
func get(cl *http.Client, url string) (response, *tls.ConnectionState, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return response{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, nil, err
	}
	out := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &out.echo)
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		out.code = e.Error.Code
	}
	return out, resp.TLS, nil
}

func mustGet(t *testing.T, cl *http.Client, url string) (response, *tls.ConnectionState) {
	t.Helper()
	r, cs, err := get(cl, url)
	if err != nil {
		t.Fatal(err)
	}
	return r, cs
}

// TestHTTPSServesBySNI: two certificates on one HTTPS listener, each
// served for its name; the upstream learns the scheme; plain HTTP stays on
// its own listener; an unknown name fails the handshake, counted.
func TestHTTPSServesBySNI(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	c.put(keyless("e", "/e", up.URL))
	e := newEdge(t)
	ac, ak := e.ca.Server(t, "a.test").Write(t, e.dir, "a")
	bc, bk := e.ca.Server(t, "b.test", "*.b.test").Write(t, e.dir, "b")
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: ac, KeyFile: ak}, {CertFile: bc, KeyFile: bk}}))
	for _, tc := range []struct{ name, want string }{{"a.test", "a.test"}, {"b.test", "b.test"}, {"x.b.test", "b.test"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, cs := mustGet(t, httpsClient(e.ca.Pool(), tc.name, nil, true), httpsURL(n)+"/e/x")
			if r.status != 200 || cs.PeerCertificates[0].Subject.CommonName != tc.want {
				t.Fatalf("status %d, certificate %s, want 200 from %s", r.status, cs.PeerCertificates[0].Subject.CommonName, tc.want)
			}
			if p := r.echo.Headers["X-Forwarded-Proto"]; p != "https" {
				t.Fatalf("X-Forwarded-Proto %q over HTTPS", p)
			}
		})
	}
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		if r := do(t, "GET", n.url+"/e/x"); r.status != 200 || r.echo.Headers["X-Forwarded-Proto"] != "http" {
			t.Fatalf("plain HTTP: status %d, proto %q", r.status, r.echo.Headers["X-Forwarded-Proto"])
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		t.Parallel()
		if _, err := served(t, n, e.ca.Pool(), "c.test"); err == nil {
			t.Fatal("handshake for an unknown name succeeded")
		}
		testutil.WaitFor(t, 5*time.Second, func() error {
			if v := counter(t, n.reg, "sluice_tls_handshake_errors_total", "reason", "unknown_sni"); v != 1 {
				return fmt.Errorf("unknown_sni counted %v", v)
			}
			return nil
		})
	})
}

// TestHTTPSOnly: with plain HTTP off the node serves HTTPS alone.
func TestHTTPSOnly(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	c.put(keyless("e", "/e", up.URL))
	e := newEdge(t)
	ac, ak := e.ca.Server(t, "a.test").Write(t, e.dir, "a")
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: ac, KeyFile: ak}}), func(o *Options) { o.Listen = "" })
	if n.srv.Addr() != "" {
		t.Fatalf("plain listener on %s", n.srv.Addr())
	}
	if r, _ := mustGet(t, httpsClient(e.ca.Pool(), "a.test", nil, true), httpsURL(n)+"/e/x"); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
}

// TestHTTPSKeepsTheWireGuard: the guard that refuses framing two parsers
// could read differently reads the decrypted stream of an HTTPS connection
// too (wire.go), and fasthttp still sees the connection as TLS.
func TestHTTPSKeepsTheWireGuard(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	var received atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { received.Add(1) }))
	t.Cleanup(up.Close)
	c.put(keyless("e", "/e", up.URL))
	e := newEdge(t)
	ac, ak := e.ca.Server(t, "a.test").Write(t, e.dir, "a")
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: ac, KeyFile: ak}}))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.srv.TLSAddr(),
		&tls.Config{RootCAs: e.ca.Pool(), ServerName: "a.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// A bare LF ends the request line: refused on the wire, not left hanging.
	if _, err := io.WriteString(conn, "GET /e/x HTTP/1.1\nHost: a.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(conn) // the connection is closed after the answer
	if !strings.HasPrefix(string(answer), "HTTP/1.1 400 ") {
		t.Fatalf("bare LF over HTTPS answered %q, want 400", answer)
	}
	if got := received.Load(); got != 0 {
		t.Fatalf("upstream received %d requests", got)
	}
}

// TestTLSReloadUnderLoad: 2,000 requests over 4 clients (two keep-alive,
// two opening a connection per request) while the certificate files are
// replaced twice: no request fails, and the last certificate is served.
func TestTLSReloadUnderLoad(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	c.put(keyless("e", "/e", up.URL))
	e := newEdge(t)
	v1 := e.ca.Server(t, "a.test")
	cf, kf := v1.Write(t, e.dir, "a")
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: cf, KeyFile: kf}}))
	const workers, perWorker = 4, 500
	var done, failed atomic.Int64
	rotated := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cl := httpsClient(e.ca.Pool(), "a.test", nil, w%2 == 0)
			for i := 0; i < perWorker; i++ {
				if i == perWorker-50 {
					<-rotated // the last requests go after both replacements
				}
				r, _, err := get(cl, httpsURL(n)+"/e/x")
				if err != nil || r.status != 200 {
					if failed.Add(1) <= 5 {
						t.Errorf("worker %d request %d: %v status %d", w, i, err, r.status)
					}
				}
				done.Add(1)
			}
		}(w)
	}
	var last string
	for _, at := range []int64{400, 1000} {
		testutil.WaitFor(t, 30*time.Second, func() error {
			if d := done.Load(); d < at {
				return fmt.Errorf("%d requests done, waiting for %d", d, at)
			}
			return nil
		})
		next := e.ca.Server(t, "a.test")
		next.Write(t, e.dir, "a")
		last = "a.test#" + next.Leaf.SerialNumber.String()
		testutil.WaitFor(t, 10*time.Second, func() error {
			got, err := served(t, n, e.ca.Pool(), "a.test")
			if err != nil || got != last {
				return fmt.Errorf("served %s (%v), want %s", got, err, last)
			}
			return nil
		})
	}
	close(rotated)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed during reloads", f, done.Load())
	}
	if got, err := served(t, n, e.ca.Pool(), "a.test"); err != nil || got != last {
		t.Fatalf("after the load: served %s (%v), want %s", got, err, last)
	}
	if v := counter(t, n.reg, "sluice_tls_reloads_total"); v < 2 {
		t.Fatalf("reloads counted %v, want at least 2", v)
	}
}

// TestTLSBadFileKeepsServing: a key file replaced by garbage is refused
// (counted, logged) and the previous certificate keeps serving; a good
// pair then replaces it.
func TestTLSBadFileKeepsServing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	up := echoUpstream(t)
	c.put(keyless("e", "/e", up.URL))
	e := newEdge(t)
	v1 := e.ca.Server(t, "a.test")
	cf, kf := v1.Write(t, e.dir, "a")
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: cf, KeyFile: kf}}))
	want := "a.test#" + v1.Leaf.SerialNumber.String()
	testutil.WriteFile(t, kf, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	testutil.WaitFor(t, 10*time.Second, func() error {
		if v := counter(t, n.reg, "sluice_tls_reload_errors_total"); v != 1 {
			return fmt.Errorf("reload errors %v, want 1", v)
		}
		return nil
	})
	if got, err := served(t, n, e.ca.Pool(), "a.test"); err != nil || got != want {
		t.Fatalf("after a bad key: served %s (%v), want the old %s", got, err, want)
	}
	if r, _ := mustGet(t, httpsClient(e.ca.Pool(), "a.test", nil, false), httpsURL(n)+"/e/x"); r.status != 200 {
		t.Fatalf("status %d after a bad key", r.status)
	}
	v2 := e.ca.Server(t, "a.test")
	v2.Write(t, e.dir, "a")
	want = "a.test#" + v2.Leaf.SerialNumber.String()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if got, err := served(t, n, e.ca.Pool(), "a.test"); err != nil || got != want {
			return fmt.Errorf("served %s (%v), want %s", got, err, want)
		}
		return nil
	})
	// The pair is two writes: a poll between them may see the new
	// certificate with the garbage key, one more distinct bad content.
	if v := counter(t, n.reg, "sluice_tls_reload_errors_total"); v != 1 && v != 2 {
		t.Fatalf("reload errors %v after the good pair, want 1 (or 2)", v)
	}
}

// TestMutualTLS: a client certificate registered as a key gets that key's
// session (its policy's quota of 3 allows exactly 3 requests); an unknown
// certificate and no certificate get 401; an API key API with auth.mtls
// takes the certificate or a key, and a certificate's record never
// answers for an API key, even one made of the certificate's hashed bytes.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	c := newExactCluster(t)
	up := echoUpstream(t)
	e := newEdge(t)
	sc, sk := e.ca.Server(t, "gw.test").Write(t, e.dir, "gw")
	alice, bob, carol := e.ca.Client(t, "alice"), e.ca.Client(t, "bob"), e.ca.Client(t, "carol")
	hash, kc, err := model.ParseClientCertificate(alice.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	m := keyless("m", "/m", up.URL)
	m.Auth, m.OnStoreError = model.Auth{Mode: model.AuthMTLS}, model.StoreErrorClosed
	k := keyless("k", "/k", up.URL)
	k.Auth = model.Auth{Mode: model.AuthAPIKey, MTLS: true, QueryParam: "api_key"}
	c.put(m, k,
		&model.Policy{ID: "q", Access: []model.AccessRight{{API: "m"}}, Quota: &model.Quota{Max: 3, Renewal: model.Duration(time.Hour)}},
		&model.Policy{ID: "k", Access: []model.AccessRight{{API: "k"}}},
		&model.Key{ID: "alice", Hash: hash, Policies: []string{"q", "k"}, Certificate: kc, CreatedAt: time.Now()},
		keyFor(secret, func(k *model.Key) { k.Policies = []string{"k"} }),
		// An API key's record under a certificate's hash (no certificate
		// description): it never answers for that certificate.
		&model.Key{ID: "carol", Hash: model.HashCert(carol.Leaf.Raw), Policies: []string{"q", "k"}, CreatedAt: time.Now()},
	)
	n := c.node(withTLS([]edgetls.Certificate{{CertFile: sc, KeyFile: sk}}, func(o *edgetls.Options) {
		o.ClientAuth, o.ClientCAFile = edgetls.ClientAuthVerifyIfGiven, e.caFile
	}))
	aliceCl := httpsClient(e.ca.Pool(), "gw.test", &alice.TLS, true)
	t.Run("quota", func(t *testing.T) {
		var codes []int
		for i := 0; i < 6; i++ {
			r, _ := mustGet(t, aliceCl, httpsURL(n)+"/m/x")
			codes = append(codes, r.status)
		}
		if fmt.Sprint(codes) != "[200 200 200 429 429 429]" {
			t.Fatalf("statuses %v, want exactly 3 allowed by the quota", codes)
		}
	})
	for _, tc := range []struct {
		name, url string
		cl        *http.Client
		status    int
		code      string
	}{
		{"unknown certificate", httpsURL(n) + "/m/x", httpsClient(e.ca.Pool(), "gw.test", &bob.TLS, false), 401, "invalid_client_certificate"},
		{"key record under a certificate's hash", httpsURL(n) + "/m/x", httpsClient(e.ca.Pool(), "gw.test", &carol.TLS, false), 401, "invalid_client_certificate"},
		{"no certificate", httpsURL(n) + "/m/x", httpsClient(e.ca.Pool(), "gw.test", nil, false), 401, "missing_client_certificate"},
		{"plain http", n.url + "/m/x", client, 401, "missing_client_certificate"},
		{"key api, certificate", httpsURL(n) + "/k/x", aliceCl, 200, ""},
		{"key api, key over https", httpsURL(n) + "/k/x?api_key=" + secret, httpsClient(e.ca.Pool(), "gw.test", nil, false), 200, ""},
		{"key api, unknown certificate", httpsURL(n) + "/k/x", httpsClient(e.ca.Pool(), "gw.test", &bob.TLS, false), 401, "invalid_client_certificate"},
		{"key api, nothing", httpsURL(n) + "/k/x", httpsClient(e.ca.Pool(), "gw.test", nil, false), 401, "missing_key"},
		{"key api, certificate record as key", n.url + "/k/x?api_key=" + url.QueryEscape(model.CertHashPrefix+string(alice.Leaf.Raw)), client, 401, "invalid_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := mustGet(t, tc.cl, tc.url)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("status %d code %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			if tc.status == 200 && strings.Contains(r.echo.Path, "api_key") {
				t.Fatalf("key forwarded upstream: %s", r.echo.Path)
			}
		})
	}
}

// TestUpstreamTLS: an upstream requiring a client certificate, reached
// with the API's CA and certificate; a wrong CA or no certificate gets 502
// with a JSON error; insecure_skip_verify skips verification.
func TestUpstreamTLS(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	uca, other := testutil.NewCA(t), testutil.NewCA(t)
	tlsUp := tlsEchoUpstream(t, uca.Server(t, "upstream.test").TLS, uca)
	dir := t.TempDir()
	gwCert, gwKey := uca.Client(t, "gateway").Write(t, dir, "gateway")
	caFile := dir + "/upstream-ca.pem"
	testutil.WriteFile(t, caFile, uca.PEM)
	api := func(id string, ut model.UpstreamTLS) *model.API {
		a := keyless(id, "/"+id, tlsUp.URL)
		a.Upstream.TLS = &ut
		return a
	}
	c.put(
		api("good", model.UpstreamTLS{CAPEM: string(uca.PEM), CertFile: gwCert, KeyFile: gwKey, ServerName: "upstream.test"}),
		api("cafile", model.UpstreamTLS{CAFile: caFile, CertFile: gwCert, KeyFile: gwKey, ServerName: "upstream.test"}),
		api("insecure", model.UpstreamTLS{InsecureSkipVerify: true, CertFile: gwCert, KeyFile: gwKey}),
		api("wrongca", model.UpstreamTLS{CAPEM: string(other.PEM), CertFile: gwCert, KeyFile: gwKey, ServerName: "upstream.test"}),
		api("nocert", model.UpstreamTLS{CAPEM: string(uca.PEM), ServerName: "upstream.test"}),
	)
	n := c.node()
	for _, tc := range []struct {
		id     string
		status int
		code   string
	}{{"good", 200, ""}, {"cafile", 200, ""}, {"insecure", 200, ""}, {"wrongca", 502, "upstream_unavailable"}, {"nocert", 502, "upstream_unavailable"}} {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			r := do(t, "GET", n.url+"/"+tc.id+"/x")
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("status %d code %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			if tc.status == 502 && r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("502 content type %q", r.header.Get("Content-Type"))
			}
			if tc.status == 200 && r.echo.Headers["X-Client-Cert"] != "gateway" {
				t.Fatalf("upstream saw client certificate %q", r.echo.Headers["X-Client-Cert"])
			}
		})
	}
}

// tlsEchoUpstream is echoUpstream over TLS, requiring a client certificate
// issued by clients; it reports the client's common name as the
// X-Client-Cert header of the echo.
func tlsEchoUpstream(t *testing.T, cert tls.Certificate, clients *testutil.CA) *httptestServer {
	t.Helper()
	s := newTLSUpstream(func(w http.ResponseWriter, r *http.Request) {
		ec := echoed{Path: r.URL.RequestURI(), Host: r.Host, Headers: map[string]string{}}
		for k := range r.Header {
			ec.Headers[k] = r.Header.Get(k)
		}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			ec.Headers["X-Client-Cert"] = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ec)
	}, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients.Pool()})
	t.Cleanup(s.Close)
	return s
}
