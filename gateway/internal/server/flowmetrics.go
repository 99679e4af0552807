package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// flowMetrics count streamed responses and upgraded connections. Labels
// are bounded: status classes and fixed outcome names.
type flowMetrics struct {
	streams     *prometheus.CounterVec // by status class of how it ended
	streamBytes prometheus.Counter
	upgraded    prometheus.Gauge
	upgrades    *prometheus.CounterVec // by outcome
	tunnelBytes *prometheus.CounterVec // by direction
}

func newFlowMetrics(reg prometheus.Registerer) (*flowMetrics, error) {
	f := &flowMetrics{
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_streamed_responses_total",
			Help: "Responses forwarded as they arrived, by how they ended: the status class recorded (499 counts as 4xx).",
		}, []string{"status_class"}),
		streamBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_streamed_bytes_total",
			Help: "Response body bytes of streamed responses handed to clients.",
		}),
		upgraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_upgraded_connections",
			Help: "Upgraded (WebSocket) connections open now.",
		}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upgrades_total",
			Help: "Upgraded connections, by how they ended: closed, idle, lifetime, revoked, shutdown.",
		}, []string{"outcome"}),
		tunnelBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upgraded_bytes_total",
			Help: "Bytes carried by upgraded connections, by direction (upstream: from the client, downstream: to it).",
		}, []string{"direction"}),
	}
	for _, c := range []prometheus.Collector{f.streams, f.streamBytes, f.upgraded, f.upgrades, f.tunnelBytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, c := range classes[1:] {
		f.streams.WithLabelValues(c)
	}
	return f, nil
}

func (m *metrics) streamEnded(status int, sent int64) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	m.flow.streams.WithLabelValues(classes[c]).Inc()
	m.flow.streamBytes.Add(float64(sent))
}
