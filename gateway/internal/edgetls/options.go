package edgetls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Client certificate policies (client_auth).
const (
	ClientAuthNone = "none" // no client certificate is asked for
	// ClientAuthVerifyIfGiven asks for a certificate, accepts connections
	// without one, and refuses the handshake of one that does not verify
	// against client_ca_file. APIs in auth mode mtls then see only
	// verified certificates; others serve clients without one.
	ClientAuthVerifyIfGiven = "verify_if_given"
	// ClientAuthRequire refuses every connection without a certificate
	// verified against client_ca_file.
	ClientAuthRequire = "require"
)

// DefaultReloadInterval is how often the files are checked for changes.
const DefaultReloadInterval = 5 * time.Second

// Options configure TLS on the traffic listener (the tls: section).
type Options struct {
	// Listen is the HTTPS traffic address; empty: no HTTPS listener.
	Listen string `yaml:"listen"`
	// Certificates are the server certificates, chosen by the name the
	// client asks for (SNI) among each certificate's DNS names (wildcards
	// match one label). A client sending no name gets the first one; a
	// name no certificate holds fails the handshake (unknown_sni).
	// From the environment: "cert.pem:key.pem,cert2.pem:key2.pem".
	Certificates Certificates `yaml:"certificates"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or
	// "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientCAFile holds the PEM certificates that verify client
	// certificates; required unless client_auth is none.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none (default), verify_if_given or require.
	ClientAuth string `yaml:"client_auth"`
	// ReloadInterval is how often the certificate, key and CA files are
	// read again; changed files are loaded without a restart (default 5s).
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Certificate is one server certificate: a PEM chain (leaf first) and its
// PEM private key.
type Certificate struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Certificates is the list of server certificates.
type Certificates []Certificate

// UnmarshalText reads "CERT_FILE:KEY_FILE" pairs separated by commas, the
// form an environment variable (SLUICE_TLS_CERTIFICATES) gives.
func (cs *Certificates) UnmarshalText(text []byte) error {
	var out Certificates
	for _, pair := range strings.Split(string(text), ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		cert, key, ok := strings.Cut(pair, ":")
		if !ok || cert == "" || key == "" {
			return fmt.Errorf("certificate %q: want CERT_FILE:KEY_FILE", pair)
		}
		out = append(out, Certificate{CertFile: cert, KeyFile: key})
	}
	*cs = out
	return nil
}

// WithDefaults fills unset fields.
func (o Options) WithDefaults() Options {
	if o.MinVersion == "" {
		o.MinVersion = "1.2"
	}
	if o.ClientAuth == "" {
		o.ClientAuth = ClientAuthNone
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	return o
}

// Enabled reports whether an HTTPS listener is configured.
func (o *Options) Enabled() bool { return o.Listen != "" }

// Validate returns every problem, fields relative to the tls section. When
// a listener is configured it reads the files: a missing or unreadable
// file, a key that does not parse and a certificate that does not match
// its key are each reported with their field.
func (o *Options) Validate() validation.Errors {
	var errs validation.Errors
	if !o.Enabled() {
		return errs
	}
	if _, port, err := splitPort(o.Listen); err != nil || port == "" {
		errs.Add("listen", "must be [host]:port, like :8443, got %q", o.Listen)
	}
	if _, err := minVersion(o.MinVersion); err != nil {
		errs.Add("min_version", "%v", err)
	}
	if o.ReloadInterval <= 0 {
		errs.Add("reload_interval", "must be a positive duration, like 5s")
	}
	if len(o.Certificates) == 0 {
		errs.Add("certificates", "at least one certificate (cert_file, key_file) is required with tls.listen")
	}
	for i, c := range o.Certificates {
		if p := checkPair(c); p != nil {
			errs.Add(validation.Index("certificates", i)+p.field, "%s", p.msg)
		}
	}
	switch o.ClientAuth {
	case ClientAuthNone:
	case ClientAuthVerifyIfGiven, ClientAuthRequire:
		if o.ClientCAFile == "" {
			errs.Add("client_ca_file", "required when client_auth is %s", o.ClientAuth)
		}
	default:
		errs.Add("client_auth", "must be %q, %q or %q", ClientAuthNone, ClientAuthVerifyIfGiven, ClientAuthRequire)
	}
	if o.ClientCAFile != "" {
		if _, err := loadCAs(o.ClientCAFile); err != nil {
			errs.Add("client_ca_file", "%v", err)
		}
	}
	return errs
}

func splitPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port")
	}
	return addr[:i], addr[i+1:], nil
}

func minVersion(v string) (uint16, error) {
	switch v {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("must be \"1.2\" or \"1.3\", got %q", v)
}

func clientAuth(v string) tls.ClientAuthType {
	switch v {
	case ClientAuthVerifyIfGiven:
		return tls.VerifyClientCertIfGiven
	case ClientAuthRequire:
		return tls.RequireAndVerifyClientCert
	}
	return tls.NoClientCert
}

// pairProblem is a problem with one certificate, with the field it names
// relative to the certificate (".cert_file", ".key_file" or "").
type pairProblem struct{ field, msg string }

// checkPair reads and checks one certificate and its key; nil: usable.
func checkPair(c Certificate) *pairProblem {
	certPEM, p := readFile(".cert_file", c.CertFile)
	if p != nil {
		return p
	}
	keyPEM, p := readFile(".key_file", c.KeyFile)
	if p != nil {
		return p
	}
	if err := checkCertPEM(certPEM); err != nil {
		return &pairProblem{".cert_file", fmt.Sprintf("%s: %v", c.CertFile, err)}
	}
	if err := checkKeyPEM(keyPEM); err != nil {
		return &pairProblem{".key_file", fmt.Sprintf("%s: %v", c.KeyFile, err)}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return &pairProblem{"", fmt.Sprintf("certificate %s does not match key %s: %v", c.CertFile, c.KeyFile, err)}
	}
	return nil
}

func readFile(field, path string) ([]byte, *pairProblem) {
	if path == "" {
		return nil, &pairProblem{field, "required"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &pairProblem{field, fmt.Sprintf("cannot read: %v", err)}
	}
	return b, nil
}

func checkCertPEM(data []byte) error {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("no PEM CERTIFICATE block")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return fmt.Errorf("certificate does not parse: %w", err)
	}
	return nil
}

func checkKeyPEM(data []byte) error {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return fmt.Errorf("no PEM private key block")
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return nil
		}
		if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return nil
		}
		return fmt.Errorf("private key does not parse (PKCS #8, PKCS #1 or EC expected)")
	}
}

func loadCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
