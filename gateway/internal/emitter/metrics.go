package emitter

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	published prometheus.Counter
	dropped   prometheus.Counter
	batches   prometheus.Counter
	errors    prometheus.Counter
	// publishTime: from publish to JetStream's acknowledgement, per batch.
	publishTime prometheus.Histogram
	batchSize   prometheus.Histogram
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
	m.publishTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_usage_publish_duration_seconds",
		Help:    "Time from publishing a usage batch to its acknowledgement by JetStream (the last attempt).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sluice_usage_batch_events",
		Help:    "Usage events per batch acknowledged by JetStream.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	})
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_usage_buffer_events",
		Help: "Usage events held by the node: queued or in batches not yet acknowledged.",
	}, depth)
	for _, c := range []prometheus.Collector{m.published, m.dropped, m.batches, m.errors, m.publishTime, m.batchSize, gauge} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
