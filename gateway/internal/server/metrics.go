package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the request path. Label values are bounded: API ids come from
// the configuration ("none" when no API matched) and status classes are
// 1xx..5xx.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	perAPI   sync.Map // api id -> *apiMetrics
	flow     *flowMetrics
}

type apiMetrics struct {
	class    [6]prometheus.Counter // index status/100
	duration prometheus.Observer
}

var classes = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total",
			Help: "Requests answered by the gateway, by API and status class.",
		}, []string{"api", "status_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_request_duration_seconds",
			Help:    "Time from request read to response ready, by API.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"api"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	m.flow, err = newFlowMetrics(reg)
	return m, err
}

// forAPI returns the metric handles of an API without allocating once seen.
func (m *metrics) forAPI(id string) *apiMetrics {
	if v, ok := m.perAPI.Load(id); ok {
		return v.(*apiMetrics)
	}
	am := &apiMetrics{duration: m.duration.WithLabelValues(id)}
	for i, c := range classes {
		am.class[i] = m.requests.WithLabelValues(id, c)
	}
	v, _ := m.perAPI.LoadOrStore(id, am)
	return v.(*apiMetrics)
}

func (am *apiMetrics) observe(status int, seconds float64) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	am.class[c].Inc()
	am.duration.Observe(seconds)
}
