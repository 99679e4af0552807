package edgetls

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// DefaultHandshakeTimeout bounds a handshake's writes when the server sets
// no write deadline of its own before its first read.
const DefaultHandshakeTimeout = 10 * time.Second

// Listener accepts TLS connections configured by an Edge. The handshake
// runs on a connection's first read (in its own goroutine, never in
// Accept); a failed handshake is counted by reason and closes only that
// connection.
type Listener struct {
	net.Listener
	edge *Edge
	cfg  *tls.Config
}

// NewListener wraps inner (a TCP listener) in TLS.
func (e *Edge) NewListener(inner net.Listener) *Listener {
	return &Listener{Listener: inner, edge: e, cfg: e.Config()}
}

// Accept returns the next connection as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: tls.Server(c, l.cfg), edge: l.edge}, nil
}

// Conn is a server TLS connection whose handshake failure is counted. It
// embeds *tls.Conn, so fasthttp sees a TLS connection (RequestCtx.IsTLS,
// TLSConnectionState).
type Conn struct {
	*tls.Conn
	edge *Edge
	// shook is set after the first read's handshake. Only the reading
	// goroutine touches it.
	shook bool
}

// Read completes the handshake first, counting its failure.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.shook {
		c.shook = true
		_ = c.Conn.SetWriteDeadline(time.Now().Add(DefaultHandshakeTimeout))
		err := c.Conn.Handshake()
		_ = c.Conn.SetWriteDeadline(time.Time{})
		if err != nil {
			c.edge.m.handshake[Classify(err)].Inc()
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

// Classify names why a server handshake failed, one of the Reason values.
func Classify(err error) string {
	var verr *tls.CertificateVerificationError
	var rec tls.RecordHeaderError
	var op *net.OpError
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.Is(err, ErrUnknownSNI):
		return ReasonUnknownSNI
	case errors.As(err, &verr), strings.Contains(msg, "client didn't provide a certificate"):
		return ReasonBadClientCert
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "no mutually supported protocol versions"):
		return ReasonProtocolVersion
	case strings.Contains(msg, "no cipher suite supported"), strings.Contains(msg, "no key exchanges supported"),
		strings.Contains(msg, "no ECDHE curve"):
		return ReasonNoCommonCipher
	case errors.As(err, &rec):
		return ReasonNotTLS
	case errors.As(err, &op) && op.Op == "remote error":
		return ReasonClientAlert
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EPIPE):
		return ReasonClosed
	}
	return ReasonOther
}
