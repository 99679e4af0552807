package edgetls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrUnknownSNI fails a handshake asking for a name no certificate holds.
var ErrUnknownSNI = errors.New("tls: no certificate for the requested server name")

// certSet is one immutable generation of the listener's certificates and
// client CAs, swapped atomically on reload.
type certSet struct {
	config   *tls.Config // per-handshake config: GetCertificate is pick
	def      *tls.Certificate
	exact    map[string]*tls.Certificate // lower-case DNS name
	wildcard map[string]*tls.Certificate // "*.example.com" under "example.com"
	files    [][]byte                    // contents read, in sources order
}

// sources lists the files a set is built from, in a fixed order.
func (o *Options) sources() []string {
	var s []string
	for _, c := range o.Certificates {
		s = append(s, c.CertFile, c.KeyFile)
	}
	if o.ClientCAFile != "" {
		s = append(s, o.ClientCAFile)
	}
	return s
}

// readSources reads every file a set is built from.
func readSources(paths []string) ([][]byte, error) {
	out := make([][]byte, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func sameContents(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// buildSet parses the files read (in sources order) into a set. base is
// the listener's config, cloned for every set.
func buildSet(o *Options, base *tls.Config, files [][]byte) (*certSet, error) {
	s := &certSet{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}, files: files}
	for i, c := range o.Certificates {
		pair, err := tls.X509KeyPair(files[2*i], files[2*i+1])
		if err != nil {
			return nil, fmt.Errorf("certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
		}
		s.add(&pair)
	}
	cfg := base.Clone()
	if o.ClientCAFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(files[len(files)-1]) {
			return nil, fmt.Errorf("client CA file %s: no PEM certificate found", o.ClientCAFile)
		}
		cfg.ClientCAs = pool
	}
	cfg.GetCertificate = s.pick
	s.config = cfg
	return s, nil
}

// add indexes a certificate by its DNS names (its subject common name when
// it has none); the first certificate is the default.
func (s *certSet) add(c *tls.Certificate) {
	if s.def == nil {
		s.def = c
	}
	leaf := c.Leaf
	if leaf == nil {
		return
	}
	names := leaf.DNSNames
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = []string{leaf.Subject.CommonName}
	}
	for _, n := range names {
		n = strings.ToLower(n)
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if _, dup := s.wildcard[rest]; !dup {
				s.wildcard[rest] = c
			}
			continue
		}
		if _, dup := s.exact[n]; !dup {
			s.exact[n] = c
		}
	}
}

// pick chooses the certificate for a handshake by SNI: an exact name, then
// a wildcard one label up; no name gets the default certificate.
func (s *certSet) pick(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(hello.ServerName, ".")
	if name == "" {
		return s.def, nil
	}
	name = strings.ToLower(name)
	if c := s.exact[name]; c != nil {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := s.wildcard[name[i+1:]]; c != nil {
			return c, nil
		}
	}
	return nil, ErrUnknownSNI
}
