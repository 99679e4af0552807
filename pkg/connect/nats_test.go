package connect

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// natsCase is a server set up for one kind of credential, the client
// configuration it accepts, and variants it refuses.
type natsCase struct {
	name   string
	server func(*server.Options)
	good   func(*NATS)
	bad    []natsBad
}

type natsBad struct {
	name  string
	set   func(*NATS) // applied after good
	field string
}

func TestNATSCredentialsAndTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	srvPair, cl := ca.Server(t), ca.Client(t, "sluice")

	userKP, _ := nkeys.CreateUser()
	userSeed, _ := userKP.Seed()
	userPub, _ := userKP.PublicKey()
	strangerKP, _ := nkeys.CreateUser()
	strangerSeed, _ := strangerKP.Seed()
	seedFile := writeFile(t, dir, "user.nk", string(userSeed))
	strangerSeedFile := writeFile(t, dir, "stranger.nk", string(strangerSeed))

	op, acc, creds := operatorAccountUser(t, dir, "sluice.creds")
	_, _, foreignCreds := operatorAccountUser(t, dir, "foreign.creds") // another operator's user

	tests := []natsCase{
		{
			name: "tls with a client certificate",
			server: func(o *server.Options) {
				tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvPair.CertFile, KeyFile: srvPair.KeyFile, CaFile: ca.File, Verify: true})
				if err != nil {
					t.Fatal(err)
				}
				// TLS 1.2: a missing client certificate is refused within the
				// handshake. Under TLS 1.3 the refusal comes after it, and the
				// client may see only a closed connection, which it retries.
				tc.MaxVersion = tls.VersionTLS12
				o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, true, 2
			},
			good: func(n *NATS) {
				n.TLS = TLSClient{Enabled: true, CAFile: ca.File, CertFile: cl.CertFile, KeyFile: cl.KeyFile}
			},
			bad: []natsBad{
				{"CA that does not verify the server", func(n *NATS) { n.TLS.CAFile = other.File }, "nats.tls.ca_file"},
				{"no client certificate", func(n *NATS) { n.TLS.CertFile, n.TLS.KeyFile = "", "" }, "nats.tls.cert_file"},
				{"missing key file", func(n *NATS) { n.TLS.KeyFile = filepath.Join(dir, "nope") }, "nats.tls.key_file"},
				{"tls off", func(n *NATS) { n.TLS = TLSClient{} }, "nats.tls.enabled"},
			},
		},
		{
			name:   "user and password",
			server: func(o *server.Options) { o.Username, o.Password = "sluice", "s3cret" },
			good:   func(n *NATS) { n.User, n.Password = "sluice", "s3cret" },
			bad: []natsBad{
				{"wrong password", func(n *NATS) { n.Password = "wrong" }, "nats.password"},
				{"no credentials", func(n *NATS) { n.User, n.Password = "", "" }, "nats.user"},
			},
		},
		{
			name:   "token",
			server: func(o *server.Options) { o.Authorization = "t0ken-value" },
			good:   func(n *NATS) { n.Token = "t0ken-value" },
			bad:    []natsBad{{"wrong token", func(n *NATS) { n.Token = "other" }, "nats.token"}},
		},
		{
			name:   "nkey seed file",
			server: func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: userPub}} },
			good:   func(n *NATS) { n.NkeySeedFile = seedFile },
			bad: []natsBad{
				{"another user's seed", func(n *NATS) { n.NkeySeedFile = strangerSeedFile }, "nats.nkey_seed_file"},
				{"missing seed file", func(n *NATS) { n.NkeySeedFile = filepath.Join(dir, "nope") }, "nats.nkey_seed_file"},
			},
		},
		{
			name: "creds file (operator, account, user JWTs)",
			server: func(o *server.Options) {
				res := &server.MemAccResolver{}
				if err := res.Store(acc.pub, acc.jwt); err != nil {
					t.Fatal(err)
				}
				o.TrustedOperators, o.AccountResolver, o.JetStream = []*jwt.OperatorClaims{op}, res, false
			},
			good: func(n *NATS) { n.CredsFile = creds },
			bad: []natsBad{
				{"user of another operator", func(n *NATS) { n.CredsFile = foreignCreds }, "nats.creds_file"},
				{"missing creds file", func(n *NATS) { n.CredsFile = filepath.Join(dir, "nope") }, "nats.creds_file"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testutil.StartNATSWith(t, func(o *server.Options) { o.JetStream = false; tc.server(o) })
			base := DefaultNATS()
			base.URL = srv.URL()
			tc.good(&base)
			if errs := base.Validate(); len(errs) > 0 {
				t.Fatalf("invalid: %v", errs)
			}
			nc, err := base.Connect("connect test", zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			roundTrip(t, nc)
			for _, b := range tc.bad {
				c := base
				b.set(&c)
				nc, err := c.Connect("connect test", zerolog.Nop())
				if err == nil {
					nc.Close()
				}
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != b.field || !strings.HasPrefix(err.Error(), b.field+": ") {
					t.Errorf("%s: error %v, want one naming %s", b.name, err, b.field)
				}
			}
		})
	}
}

func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("connect.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("connect.test", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || string(m.Data) != "hi" {
		t.Fatalf("round trip: %v", err)
	}
}

type account struct{ pub, jwt string }

// operatorAccountUser makes an operator, an account it signs and a user
// the account signs, and writes the user's credentials file.
func operatorAccountUser(t *testing.T, dir, name string) (*jwt.OperatorClaims, account, string) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	op := jwt.NewOperatorClaims(opub)
	op.Name = "sluice-test"
	if _, err := op.Encode(okp); err != nil {
		t.Fatal(err)
	}
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ajwt, err := ac.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = apub
	ujwt, err := uc.Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	return op, account{apub, ajwt}, writeFile(t, dir, name, string(creds))
}

// A service whose NATS is not up yet starts, and connects when NATS comes.
func TestNATSRetryOnFailedConnect(t *testing.T) {
	t.Parallel()
	port := testutil.FreePort(t)
	c := DefaultNATS()
	c.URL = "nats://127.0.0.1:" + itoa(port)
	nc, err := c.Connect("connect test", zerolog.Nop())
	if err != nil {
		t.Fatalf("connect with NATS down: %v", err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected to nothing")
	}
	testutil.StartNATSWith(t, func(o *server.Options) { o.Port = port })
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	roundTrip(t, nc)

	c.RetryOnFailedConnect = false
	c.URL = "nats://127.0.0.1:1"
	if nc, err := c.Connect("connect test", zerolog.Nop()); err == nil {
		nc.Close()
		t.Fatal("retry_on_failed_connect false: no error with NATS down")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
