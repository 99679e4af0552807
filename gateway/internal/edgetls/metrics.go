package edgetls

import "github.com/prometheus/client_golang/prometheus"

// Handshake failure reasons: a bounded set, the label values of
// sluice_tls_handshake_errors_total.
const (
	ReasonUnknownSNI      = "unknown_sni"            // no certificate for the name asked
	ReasonBadClientCert   = "bad_client_certificate" // missing when required, or not verified by the client CAs
	ReasonProtocolVersion = "protocol_version"       // the client offered only versions below min_version
	ReasonNoCommonCipher  = "no_common_cipher"       // no cipher suite or curve both sides support
	ReasonNotTLS          = "not_tls"                // the first bytes were not a TLS record (plain HTTP on the HTTPS port)
	ReasonClientAlert     = "client_alert"           // the client aborted, e.g. it rejected the server certificate
	ReasonTimeout         = "timeout"                // the handshake did not complete in time
	ReasonClosed          = "closed"                 // the connection closed mid-handshake
	ReasonOther           = "other"
)

var reasons = []string{
	ReasonUnknownSNI, ReasonBadClientCert, ReasonProtocolVersion, ReasonNoCommonCipher,
	ReasonNotTLS, ReasonClientAlert, ReasonTimeout, ReasonClosed, ReasonOther,
}

type metrics struct {
	reloads      prometheus.Counter
	reloadErrors prometheus.Counter
	handshake    map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_tls_reloads_total",
			Help: "Changed TLS certificate files loaded without a restart.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_tls_reload_errors_total",
			Help: "Changed TLS certificate files that failed to load (the previous certificates kept serving).",
		}),
		handshake: map[string]prometheus.Counter{},
	}
	hs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_tls_handshake_errors_total",
		Help: "TLS handshakes on the traffic listener that failed, by reason.",
	}, []string{"reason"})
	for _, r := range reasons {
		m.handshake[r] = hs.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{m.reloads, m.reloadErrors, hs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
