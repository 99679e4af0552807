package server

import (
	"crypto/sha256"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/pkg/model"
)

// The errors of mutual TLS authentication.
var (
	ErrMissingClientCert = newError(fasthttp.StatusUnauthorized, "missing_client_certificate", "a client certificate verified by the gateway is required")
	ErrInvalidClientCert = newError(fasthttp.StatusUnauthorized, "invalid_client_certificate", "the client certificate is not registered")
)

// authenticateCert finds the session of the request's client certificate:
// the leaf of a chain the HTTPS listener verified against its client CAs
// (client_auth verify_if_given or require), looked up like an API key
// under model.HashCert of its DER. A certificate presented but not
// verified counts as none.
func (s *Server) authenticateCert(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	der := verifiedLeaf(ctx)
	if der == nil {
		return ErrMissingClientCert
	}
	sess, err := s.state.Sessions().Lookup(s.base, sumCert(der))
	switch {
	case errors.Is(err, auth.ErrUnknownKey):
		return ErrInvalidClientCert
	case errors.Is(err, auth.ErrStale) && x.api.FailOpen:
		// the store is down: served as the node last read it
	case err != nil:
		s.warn(err, "client certificate lookup failed")
		return ErrStoreDown
	}
	if !sess.Cert {
		return ErrInvalidClientCert // a key's record is no certificate
	}
	switch sess.Usable(x.start) {
	case auth.ErrExpired:
		return ErrKeyExpired
	case auth.ErrDisabled:
		return ErrKeyDisabled
	}
	x.sess = sess
	return nil
}

// authenticateKeyOrCert serves an API key API that also accepts a client
// certificate (auth.mtls): a request carrying any API key or token is
// judged by it (as without auth.mtls); one carrying none is judged by its
// verified client certificate when it has one.
func (s *Server) authenticateKeyOrCert(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	a := &x.api.Auth
	key, _, ferr := auth.FindKey(&ctx.Request, a.Header, a.QueryParam, nil)
	if ferr != nil {
		return ErrAmbiguousCredentials
	}
	if len(key) == 0 && len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) == 0 && verifiedLeaf(ctx) != nil {
		if v := x.api.JWT; v != nil {
			v.StripForwarded(&ctx.Request.Header) // no caller sets claim headers
		}
		return s.authenticateCert(ctx, x)
	}
	if x.api.JWT != nil {
		return s.authenticateEither(ctx, x)
	}
	return s.authenticateKey(ctx, x, key)
}

// verifiedLeaf is the DER of the client certificate the TLS handshake
// verified, or nil.
func verifiedLeaf(ctx *fasthttp.RequestCtx) []byte {
	if !ctx.IsTLS() {
		return nil
	}
	cs := ctx.TLSConnectionState()
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0].Raw
}

var certHashPrefix = []byte(model.CertHashPrefix)

// sumCert is the binary form of model.HashCert: the hash a certificate's
// key record is stored and cached under.
func sumCert(der []byte) auth.Sum {
	h := sha256.New()
	h.Write(certHashPrefix)
	h.Write(der)
	var sum auth.Sum
	h.Sum(sum[:0])
	return sum
}
