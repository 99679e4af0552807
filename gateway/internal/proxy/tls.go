package proxy

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/sluicegw/sluice/pkg/model"
)

// clientTLS builds the TLS config of an upstream's https:// targets from
// its settings (nil: fasthttp's default, the system roots). Files are read
// once, when the upstream's client is built: a changed file takes effect
// when the API is next changed or the node restarts.
func clientTLS(t *model.UpstreamTLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicit per-API opt-in, logged on load
	}
	ca := []byte(t.CAPEM)
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream.tls.ca_file: %w", err)
		}
		ca = b
	}
	if len(ca) > 0 {
		pool, err := model.ParseCertPool(ca)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream.tls CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("proxy: upstream.tls.cert_file %s with key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// sameTLS reports whether two upstream TLS settings are equal.
func sameTLS(a, b *model.UpstreamTLS) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
