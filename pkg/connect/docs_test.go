package connect

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// docExamples returns the YAML examples of docs/security.md by name (the
// "# example: NAME" line that opens each block).
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		first, _, _ := strings.Cut(m[1], "\n")
		name, ok := strings.CutPrefix(first, "# example: ")
		if !ok {
			t.Fatalf("a YAML block of docs/security.md has no \"# example: NAME\" line:\n%s", m[1])
		}
		out[name] = m[1]
	}
	return out
}

// checkedElsewhere are the examples of docs/security.md that configure
// something other than connections, and the test that checks each.
var checkedElsewhere = map[string]string{
	"edge-tls":     "gateway/internal/settings TestSecurityDocEdgeTLSExample",
	"admin-tokens": "pkg/tokens TestSecurityDocExample",
}

// The examples of docs/security.md are valid and connect to servers set
// up as they describe; the test's own addresses and files replace the
// example's.
func TestSecurityDocExamples(t *testing.T) {
	t.Parallel()
	checks := map[string]func(*testing.T, section){
		"redis-acl-tls":  checkRedisACLTLS,
		"redis-sentinel": checkRedisSentinel,
		"nats-creds-tls": checkNATSCredsTLS,
		"nats-nkey-mtls": checkNATSNkeyMTLS,
		"namespaces":     checkNamespaces,
	}
	examples := docExamples(t)
	for name, where := range checkedElsewhere {
		if _, ok := examples[name]; !ok {
			t.Errorf("docs/security.md has no example %q (checked by %s)", name, where)
		}
		delete(examples, name)
	}
	for name := range checks {
		if _, ok := examples[name]; !ok {
			t.Errorf("docs/security.md has no example %q", name)
		}
	}
	for name, text := range examples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check, ok := checks[name]
			if !ok {
				t.Fatalf("example %q is not checked by a test: add it here", name)
			}
			s := defaults()
			if err := config.Decode([]byte(text), &s); err != nil {
				t.Fatal(err)
			}
			if errs := s.validate(); len(errs) > 0 {
				t.Fatalf("invalid: %v", errs)
			}
			check(t, s)
		})
	}
}

// checkNamespaces: the example names one environment in both sections,
// and its keys and subjects carry it.
func checkNamespaces(t *testing.T, s section) {
	if s.Redis.Namespace != s.NATS.Namespace || s.Redis.Namespace == DefaultNamespace {
		t.Fatalf("namespaces %q and %q: want one, not the default", s.Redis.Namespace, s.NATS.Namespace)
	}
	ns := s.Redis.Namespace
	if got, want := s.Redis.Layout().Version(), ns+":{cfg}:version"; got != want {
		t.Errorf("version key %q, want %q", got, want)
	}
	if got, want := s.NATS.Names().UsageSubject("orders"), ns+".usage.orders"; got != want {
		t.Errorf("usage subject %q, want %q", got, want)
	}
}

// set fails unless the example sets the field.
func set(t *testing.T, field, v string) {
	t.Helper()
	if v == "" {
		t.Fatalf("the example does not set %s", field)
	}
}

func checkRedisACLTLS(t *testing.T, s section) {
	c := s.Redis
	set(t, "redis.username", c.Username)
	set(t, "redis.password_file", c.PasswordFile)
	set(t, "redis.tls.ca_file", c.TLS.CAFile)
	set(t, "redis.tls.cert_file", c.TLS.CertFile)
	ca := testutil.NewCA(t)
	r := testutil.StartRedisTLS(t, ca)
	aclUser(t, r.Client(t), c.Username, "doc-secret")
	cl := ca.Client(t, c.Username)
	c.Addr, c.PasswordFile = r.TLSAddr(), writeFile(t, t.TempDir(), "pw", "doc-secret\n")
	c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile = ca.File, cl.CertFile, cl.KeyFile
	rdb := newClient(t, c)
	ctx := context.Background()
	if err := setGet(ctx, rdb, "k"); err != nil {
		t.Fatal(err)
	}
	if who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != c.Username {
		t.Fatalf("ACL WHOAMI = %q, %v", who, err)
	}
}

func checkRedisSentinel(t *testing.T, s section) {
	c := s.Redis
	set(t, "redis.sentinel.master", c.Sentinel.Master)
	set(t, "redis.password_file", c.PasswordFile)
	st := testutil.StartSentinel(t)
	if c.Sentinel.Master != st.Master {
		t.Fatalf("example master %q, test sentinel monitors %q", c.Sentinel.Master, st.Master)
	}
	for _, r := range []*testutil.Redis{st.Primary, st.Replica} { // ACL users are per server
		aclUser(t, r.Client(t), c.Username, "doc-secret")
	}
	c.Sentinel.Addrs, c.PasswordFile = st.Addrs(), writeFile(t, t.TempDir(), "pw", "doc-secret\n")
	if err := setGet(context.Background(), newClient(t, c), "k"); err != nil {
		t.Fatal(err)
	}
}

// tlsServer sets o up for TLS with a certificate of ca; verify asks for
// client certificates.
func tlsServer(t *testing.T, ca *testutil.CA, verify bool) func(*server.Options) {
	pair := ca.Server(t)
	return func(o *server.Options) {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CaFile: ca.File, Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		tc.MaxVersion = tls.VersionTLS12 // see TestNATSCredentialsAndTLS
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, verify, 2
	}
}

// tlsURL is the example's URL with its servers replaced by srv.
func tlsURL(t *testing.T, example string, srv *testutil.NATS) string {
	t.Helper()
	if !strings.HasPrefix(example, "tls://") {
		t.Fatalf("example url %q does not ask for TLS", example)
	}
	return "tls://" + strings.TrimPrefix(srv.URL(), "nats://")
}

func checkNATSCredsTLS(t *testing.T, s section) {
	c := s.NATS
	set(t, "nats.creds_file", c.CredsFile)
	set(t, "nats.tls.ca_file", c.TLS.CAFile)
	ca := testutil.NewCA(t)
	op, acc, creds := operatorAccountUser(t, t.TempDir(), "sluice.creds")
	srv := testutil.StartNATSWith(t, func(o *server.Options) {
		res := &server.MemAccResolver{}
		if err := res.Store(acc.pub, acc.jwt); err != nil {
			t.Fatal(err)
		}
		o.TrustedOperators, o.AccountResolver, o.JetStream = []*jwt.OperatorClaims{op}, res, false
		tlsServer(t, ca, false)(o)
	})
	c.URL, c.CredsFile, c.TLS.CAFile = tlsURL(t, c.URL, srv), creds, ca.File
	nc, err := c.Connect("docs", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc)
}

func checkNATSNkeyMTLS(t *testing.T, s section) {
	c := s.NATS
	set(t, "nats.nkey_seed_file", c.NkeySeedFile)
	set(t, "nats.tls.cert_file", c.TLS.CertFile)
	ca := testutil.NewCA(t)
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	srv := testutil.StartNATSWith(t, func(o *server.Options) {
		o.Nkeys, o.JetStream = []*server.NkeyUser{{Nkey: pub}}, false
		tlsServer(t, ca, true)(o)
	})
	cl := ca.Client(t, "sluice")
	c.URL, c.NkeySeedFile = tlsURL(t, c.URL, srv), writeFile(t, t.TempDir(), "sluice.nk", string(seed))
	c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile = ca.File, cl.CertFile, cl.KeyFile
	nc, err := c.Connect("docs", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc)
}
