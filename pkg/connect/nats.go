package connect

import (
	"errors"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/validation"
)

// NATS is the connection to NATS. At most one kind of credential is set:
// user and password, token, nkey_seed_file or creds_file.
type NATS struct {
	// URL is the server, or several separated by commas (default
	// "nats://127.0.0.1:4222"). The client also learns the other servers of
	// a cluster from the one it reaches.
	URL string `yaml:"url"`
	// User and Password authenticate with a user of the server's
	// configuration.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Token authenticates with the server's authorization token.
	Token string `yaml:"token"`
	// NkeySeedFile is the file of a user nkey seed ("SU..."); it is read
	// again to sign each connect.
	NkeySeedFile string `yaml:"nkey_seed_file"`
	// CredsFile is a decentralised-auth credentials file (user JWT and
	// nkey seed, as written by nsc); it is read again at each connect, so a
	// renewed JWT needs no restart.
	CredsFile string `yaml:"creds_file"`
	// TLS encrypts the connection; cert and CA files are read again at
	// each connect.
	TLS TLSClient `yaml:"tls"`
	// ConnectTimeout bounds one connection attempt (default 2s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReconnectWait is the pause between attempts to the same server
	// (default 250ms, plus jitter).
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
	// MaxReconnects bounds reconnect attempts (default -1: forever).
	MaxReconnects int `yaml:"max_reconnects"`
	// RetryOnFailedConnect lets a service start while NATS is unreachable
	// and connect when it comes (default true). Refused credentials and
	// TLS failures still fail at start.
	RetryOnFailedConnect bool `yaml:"retry_on_failed_connect"`
	// Namespace prefixes every subject ("<namespace>.usage.<api>") and names
	// the usage stream ("<NAMESPACE>_USAGE"), so environments share one NATS
	// account without seeing each other (default "sluice"; 1-32 of a-z, 0-9,
	// '-', '_').
	Namespace string `yaml:"namespace"`
}

// Names returns the subjects and stream names of n's namespace.
func (n *NATS) Names() bus.Names { return bus.NewNames(n.Namespace) }

// DefaultNATS returns the defaults.
func DefaultNATS() NATS {
	return NATS{URL: "nats://127.0.0.1:4222", Namespace: DefaultNamespace, ConnectTimeout: 2 * time.Second, ReconnectWait: 250 * time.Millisecond,
		MaxReconnects: -1, RetryOnFailedConnect: true}
}

// Validate returns every problem, with field paths relative to the nats
// section ("url", "tls.ca_file").
func (n *NATS) Validate() validation.Errors {
	var errs validation.Errors
	if err := validation.NATSURLs(n.URL); err != nil {
		errs.Add("url", "%v", err)
	}
	var kinds []string
	if n.User != "" || n.Password != "" {
		kinds = append(kinds, "user")
		if n.User == "" {
			errs.Add("user", "must be set with password")
		}
		if n.Password == "" {
			errs.Add("password", "must be set with user")
		}
	}
	for _, k := range []struct{ field, val string }{{"token", n.Token}, {"nkey_seed_file", n.NkeySeedFile}, {"creds_file", n.CredsFile}} {
		if k.val != "" {
			kinds = append(kinds, k.field)
		}
	}
	if len(kinds) > 1 {
		errs.Add(kinds[1], "cannot be used with %s: set one kind of credential", kinds[0])
	}
	positive(&errs, "connect_timeout", n.ConnectTimeout)
	positive(&errs, "reconnect_wait", n.ReconnectWait)
	if n.MaxReconnects < -1 {
		errs.Add("max_reconnects", "must be -1 (forever), 0 or more")
	}
	if err := validation.Namespace(n.Namespace); err != nil {
		errs.Add("namespace", "%v", err)
	}
	errs.Merge("tls", n.TLS.Validate())
	return errs
}

// Connect connects with the configuration; name identifies the client to
// the server, extra options are applied last. The first attempt is made
// at once: a credential or TLS setting the server refuses, or a file that
// cannot be read, is an error naming the field (nats.creds_file,
// nats.tls.ca_file, ...). An unreachable server is not, when
// retry_on_failed_connect is on: the connection is returned and connects
// in the background.
func (n *NATS) Connect(name string, log zerolog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := n.options(name, log)
	if err != nil {
		return nil, err
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(n.URL, append(opts, nats.RetryOnFailedConnect(false))...)
	if err == nil {
		return nc, nil
	}
	if f := n.blame(err); f != "" {
		return nil, fieldError(f, err)
	}
	if !n.RetryOnFailedConnect {
		return nil, err
	}
	log.Warn().Err(err).Str("url", redactURL(n.URL)).Msg("nats does not answer yet; connecting in the background")
	return nats.Connect(n.URL, append(opts, nats.RetryOnFailedConnect(true))...)
}

func (n *NATS) options(name string, log zerolog.Logger) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name), nats.Timeout(n.ConnectTimeout), nats.ReconnectWait(n.ReconnectWait),
		nats.MaxReconnects(n.MaxReconnects),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Warn().Err(err).Msg("nats") }),
	}
	switch {
	case n.User != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.NkeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NkeySeedFile)
		if err != nil {
			return nil, fieldError("nats.nkey_seed_file", err)
		}
		opts = append(opts, o)
	case n.CredsFile != "":
		if _, err := os.ReadFile(n.CredsFile); err != nil {
			return nil, fieldError("nats.creds_file", err)
		}
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if n.TLS.Enabled {
		if _, err := n.TLS.Config(); err != nil { // checks every file now
			return nil, under("nats.tls", err)
		}
		if n.TLS.InsecureSkipVerify {
			log.Warn().Msg("nats.tls.insecure_skip_verify is on: the NATS server's certificate is not checked")
		}
		opts = append(opts, nats.Secure(n.TLS.base()))
		if cb := n.TLS.rootsCallback(); cb != nil || n.TLS.CertFile != "" {
			opts = append(opts, nats.ClientTLSConfig(n.TLS.certCallback(), cb))
		}
	}
	return opts, nil
}

// blame names the field behind a refused connect, or "".
func (n *NATS) blame(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	switch {
	case errors.Is(err, nats.ErrSecureConnRequired), errors.Is(err, nats.ErrSecureConnWanted):
		return "nats.tls.enabled"
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked),
		errors.Is(err, nats.ErrAccountAuthExpired), strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		switch {
		case n.CredsFile != "":
			return "nats.creds_file"
		case n.NkeySeedFile != "":
			return "nats.nkey_seed_file"
		case n.Token != "":
			return "nats.token"
		case n.User != "":
			return "nats.password"
		}
		return "nats.user" // the server wants credentials and none are set
	}
	if strings.Contains(err.Error(), "open ") && n.CredsFile != "" && strings.Contains(err.Error(), n.CredsFile) {
		return "nats.creds_file"
	}
	if f := tlsBlame(err); f != "" {
		if !n.TLS.Enabled {
			return "nats.tls.enabled" // the server requires TLS
		}
		return "nats.tls." + f
	}
	return ""
}

// redactURL drops user info from each URL of a list, for logs.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
