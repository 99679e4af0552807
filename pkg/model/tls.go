package model

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/validation"
)

// CertHashPrefix starts what is hashed to store a client certificate's key
// record: HashCert(der) is the SHA-256 of CertHashPrefix followed by the
// DER bytes. Certificates are public: were a record stored under the plain
// SHA-256 of the DER, that DER sent as an API key would hash to it. The
// prefix keeps the two namespaces apart (and the gateway also checks a
// record's kind: an API key never matches a certificate's record, nor a
// certificate a key's).
const CertHashPrefix = "sluice client certificate\x00"

// HashCert returns the lowercase hex hash a client certificate's key record
// is stored under (see CertHashPrefix).
func HashCert(der []byte) string {
	h := sha256.New()
	h.Write([]byte(CertHashPrefix))
	h.Write(der)
	return hex.EncodeToString(h.Sum(nil))
}

// KeyCertificate describes the client certificate a key record stands for.
// It is informational: the record is found by HashCert of the certificate.
type KeyCertificate struct {
	// Fingerprint is the lowercase hex SHA-256 of the certificate's DER,
	// as `openssl x509 -noout -fingerprint -sha256` prints it (without
	// colons).
	Fingerprint string    `json:"fingerprint" yaml:"fingerprint"`
	Subject     string    `json:"subject,omitempty" yaml:"subject,omitempty"`
	Issuer      string    `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	NotAfter    time.Time `json:"not_after" yaml:"not_after"`
}

// ParseClientCertificate parses one PEM "CERTIFICATE" block and returns the
// hash its key record is stored under and its description.
func ParseClientCertificate(pemText []byte) (string, *KeyCertificate, error) {
	block, rest := pem.Decode(pemText)
	if block == nil {
		return "", nil, errors.New("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)")
	}
	if block.Type != "CERTIFICATE" {
		return "", nil, fmt.Errorf("PEM block is %q, expected CERTIFICATE", block.Type)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return "", nil, errors.New("more than one PEM block: send only the client's own certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("certificate does not parse: %w", err)
	}
	fp := sha256.Sum256(c.Raw)
	return HashCert(c.Raw), &KeyCertificate{
		Fingerprint: hex.EncodeToString(fp[:]), Subject: c.Subject.String(),
		Issuer: c.Issuer.String(), NotAfter: c.NotAfter.UTC(),
	}, nil
}

// UpstreamTLS configures the gateway's TLS connections to an API's https://
// targets. Files are read on each gateway node when the API is loaded, so
// they must exist on every node (a private key never travels through the
// store). The CA may also be given inline (CAPEM): it is public.
type UpstreamTLS struct {
	// CAFile or CAPEM hold the PEM certificates that verify the upstream's
	// certificate, instead of the system roots.
	CAFile string `json:"ca_file,omitempty" yaml:"ca_file,omitempty"`
	CAPEM  string `json:"ca_pem,omitempty" yaml:"ca_pem,omitempty"`
	// CertFile and KeyFile are the client certificate the gateway presents
	// to an upstream that asks for one (both or neither).
	CertFile string `json:"cert_file,omitempty" yaml:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty" yaml:"key_file,omitempty"`
	// ServerName is the name verified in the upstream's certificate and
	// sent as SNI (default: the target's host).
	ServerName string `json:"server_name,omitempty" yaml:"server_name,omitempty"`
	// InsecureSkipVerify accepts any upstream certificate. It is logged as
	// a warning whenever the API is loaded.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty" yaml:"insecure_skip_verify,omitempty"`
}

// Validate returns every problem with the upstream TLS settings, fields
// relative to them. Whether the files exist is checked by the gateway that
// reads them.
func (u *UpstreamTLS) Validate() validation.Errors {
	var errs validation.Errors
	if u.CAFile != "" && u.CAPEM != "" {
		errs.Add("ca_pem", "set ca_file or ca_pem, not both")
	}
	if u.CAPEM != "" {
		if _, err := ParseCertPool([]byte(u.CAPEM)); err != nil {
			errs.Add("ca_pem", "%v", err)
		}
	}
	if (u.CertFile == "") != (u.KeyFile == "") {
		if u.CertFile == "" {
			errs.Add("cert_file", "required with key_file")
		} else {
			errs.Add("key_file", "required with cert_file")
		}
	}
	if u.InsecureSkipVerify && (u.CAFile != "" || u.CAPEM != "") {
		errs.Add("insecure_skip_verify", "a CA is set but would not be used: remove one of them")
	}
	if strings.ContainsAny(u.ServerName, "/: ") {
		errs.Add("server_name", "must be a host name, got %q", u.ServerName)
	}
	return errs
}

// ParseCertPool returns a pool of every PEM certificate in data; it fails
// when data holds none or one does not parse.
func ParseCertPool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// validateTLS checks an API's upstream TLS and mutual TLS settings.
func (a *API) validateTLS(errs *validation.Errors) {
	if t := a.Upstream.TLS; t != nil {
		errs.Merge("upstream.tls", t.Validate())
		https := false
		for _, raw := range a.Upstream.Targets {
			https = https || strings.HasPrefix(strings.ToLower(raw), "https://")
		}
		if !https {
			errs.Add("upstream.tls", "applies only to https:// targets, and no target is one")
		}
	}
	if a.Auth.MTLS && a.Auth.Mode != AuthAPIKey {
		errs.Add("auth.mtls", "applies only to mode %q (mode %q takes only certificates)", AuthAPIKey, AuthMTLS)
	}
}

// validateCertificate checks a key record's certificate description.
func (k *Key) validateCertificate(errs *validation.Errors) {
	c := k.Certificate
	if c == nil {
		return
	}
	if len(c.Fingerprint) != 64 || strings.Trim(c.Fingerprint, "0123456789abcdef") != "" {
		errs.Add("client_certificate.fingerprint", "must be the lowercase hex SHA-256 of the certificate")
	}
}
