package worker

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events     prometheus.Counter
	duplicates prometheus.Counter
	late       prometheus.Counter
	lag        prometheus.Gauge
	pending    prometheus.Gauge
	ackPending prometheus.Gauge
	redisErrs  prometheus.Counter
	malformed  prometheus.Counter
	batches    prometheus.Counter
	closed     prometheus.Counter
	apply      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_events_total",
			Help: "Usage events aggregated (each counted once)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_duplicates_total",
			Help: "Usage events skipped because their batch was already recorded."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_late_events_total",
			Help: "Usage events whose minute had closed: counted in the API's late total and added to the minute as a correction."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_analytics_lag_seconds",
			Help: "Age of the oldest usage event not yet acknowledged by the workers."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_analytics_consumer_pending_messages",
			Help: "Usage messages in the stream not yet delivered to the shared consumer (JetStream num_pending)."}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_analytics_consumer_ack_pending_messages",
			Help: "Usage messages delivered to the workers and not yet acknowledged (JetStream num_ack_pending)."}),
		redisErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_redis_errors_total",
			Help: "Redis writes that failed (the batch is redelivered)."}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_malformed_batches_total",
			Help: "Messages that could not be decoded and were terminated."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_messages_total",
			Help: "Usage messages (batches of events) acknowledged."}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_analytics_rollups_closed_total",
			Help: "API minutes closed and written to the rollup streams by this worker."}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_analytics_apply_seconds",
			Help: "Time to record one fetched batch in Redis.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12)}),
	}
	reg.MustRegister(m.events, m.duplicates, m.late, m.lag, m.pending, m.ackPending, m.redisErrs, m.malformed, m.batches, m.closed, m.apply)
	return m
}
