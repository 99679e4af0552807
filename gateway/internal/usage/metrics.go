package usage

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	published prometheus.Counter
	dropped   prometheus.Counter
	batches   prometheus.Counter
	errors    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, depth func() float64) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_events_published_total",
			Help: "Usage events acknowledged by JetStream.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_events_dropped_total",
			Help: "Usage events dropped because the buffer was full or the publisher shut down.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_batches_published_total",
			Help: "Usage batches (NATS messages) acknowledged by JetStream.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_usage_publish_errors_total",
			Help: "Failed or timed-out batch publishes (each is retried while buffered).",
		}),
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_usage_buffer_events",
		Help: "Usage events held by the node: queued or in batches not yet acknowledged.",
	}, depth)
	for _, c := range []prometheus.Collector{m.published, m.dropped, m.batches, m.errors, gauge} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
