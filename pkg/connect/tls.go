package connect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sluicegw/sluice/pkg/validation"
)

// TLSClient is the client side of a TLS link, the same for Redis and NATS.
type TLSClient struct {
	// Enabled turns TLS on (default false).
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the authorities that sign the server's
	// certificate (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that require one (mutual TLS). Both or neither. They are read
	// again at each new connection, so a renewed certificate needs no
	// restart.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name checked against the server's certificate
	// (default: the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only: it
	// is logged as a warning at start.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate checks the settings without reading files; paths are relative
// to the tls section.
func (t *TLSClient) Validate() validation.Errors {
	var errs validation.Errors
	if !t.Enabled {
		for _, f := range []struct{ name, val string }{
			{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"server_name", t.ServerName},
		} {
			if f.val != "" {
				errs.Add(f.name, "is set but tls.enabled is false")
			}
		}
		return errs
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			errs.Add("cert_file", "must be set with key_file")
		} else {
			errs.Add("key_file", "must be set with cert_file")
		}
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		errs.Add("insecure_skip_verify", "contradicts ca_file: the server's certificate would not be checked")
	}
	return errs
}

// Config loads the files and returns the client TLS configuration, or nil
// when TLS is off. Each problem names its field, relative to the tls
// section (e.g. "ca_file: open ...: no such file or directory").
func (t *TLSClient) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cfg := t.base()
	if t.CAFile != "" {
		pool, err := t.roots()
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		if _, err := t.certificate(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := t.certificate()
			if err != nil {
				return nil, err
			}
			return &c, nil
		}
	}
	return cfg, nil
}

// roots reads CAFile.
func (t *TLSClient) roots() (*x509.CertPool, error) {
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fieldError("ca_file", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fieldError("ca_file", fmt.Errorf("%s holds no PEM certificate", t.CAFile))
	}
	return pool, nil
}

// certificate reads CertFile and KeyFile and checks that they match.
func (t *TLSClient) certificate() (tls.Certificate, error) {
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		return tls.Certificate{}, fieldError("cert_file", err)
	}
	keyPEM, err := os.ReadFile(t.KeyFile)
	if err != nil {
		return tls.Certificate{}, fieldError("key_file", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fieldError(keyPairField(err), fmt.Errorf("%s and %s: %w", t.CertFile, t.KeyFile, err))
	}
	if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
		return tls.Certificate{}, fieldError("cert_file", err)
	}
	return c, nil
}

// keyPairField names the file tls.X509KeyPair found fault with: the
// certificate when it does not parse, else the key (unreadable, or not the
// key of the certificate).
func keyPairField(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "certificate input") || strings.HasPrefix(msg, "x509:") {
		return "cert_file"
	}
	return "key_file"
}

// FieldError is a problem with one configuration field found while
// connecting: a file that cannot be read, a credential the server refuses.
type FieldError struct {
	Field string // path of the field, e.g. "redis.tls.ca_file"
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field string, err error) error { return &FieldError{Field: field, Err: err} }

// under prefixes the field of a *FieldError in err with prefix.
func under(prefix string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: validation.Join(prefix, fe.Field), Err: fe.Err}
	}
	return err
}

// tlsBlame names the tls field (relative to the tls section) behind a
// failed handshake, or "" when err is not about TLS settings.
func tlsBlame(err error) string {
	var hostname x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	switch {
	case errors.As(err, &hostname):
		return "server_name"
	case errors.As(err, &unknown), errors.As(err, &invalid):
		return "ca_file"
	case errors.As(err, &record):
		return "enabled" // the server answered in plain text
	case strings.Contains(err.Error(), "remote error: tls:"):
		return "cert_file" // the server refused our certificate, or its absence
	}
	return ""
}

// base is the part of the configuration that is not read from files.
func (t *TLSClient) base() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, warned
}

// certCallback reads the client certificate at each call, or is nil.
func (t *TLSClient) certCallback() func() (tls.Certificate, error) {
	if t.CertFile == "" {
		return nil
	}
	return t.certificate
}

// rootsCallback reads the CA file at each call, or is nil.
func (t *TLSClient) rootsCallback() func() (*x509.CertPool, error) {
	if t.CAFile == "" {
		return nil
	}
	return t.roots
}
