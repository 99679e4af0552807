package server

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicegw/sluice/gateway/internal/proxy"
)

// metrics of the request path. Label values are bounded: API ids come from
// the configuration ("none" when no API matched) and status classes are
// 1xx..5xx.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// accessDropped counts access log lines dropped because the writer
	// fell behind.
	accessDropped prometheus.Counter
	upDuration    *prometheus.HistogramVec
	upErrors      *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	perAPI        sync.Map // api id -> *apiMetrics
	flow          *flowMetrics
}

type apiMetrics struct {
	class      [6]prometheus.Counter // index status/100
	duration   prometheus.Observer
	upDuration prometheus.Observer
	upErrors   map[string]prometheus.Counter // by proxy cause
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
		accessDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_access_log_dropped_total",
			Help: "Access log lines dropped because the log writer fell behind (the request path never waits for it).",
		}),
	}
	m.upDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_upstream_duration_seconds",
		Help:    "Time of the upstream call (request sent to response read), by API; failed calls included.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"api"})
	m.upErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_upstream_errors_total",
		Help: "Upstream calls that failed, by API and cause (connect, timeout, reset, other).",
	}, []string{"api", "cause"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_auth_failures_total",
		Help: "Requests refused by authentication or authorization, by API and error code.",
	}, []string{"api", "reason"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.accessDropped, m.upDuration, m.upErrors, m.authFailures} {
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
	am := &apiMetrics{duration: m.duration.WithLabelValues(id), upDuration: m.upDuration.WithLabelValues(id), upErrors: map[string]prometheus.Counter{}}
	for _, c := range proxy.Causes {
		am.upErrors[c] = m.upErrors.WithLabelValues(id, c)
	}
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

// upstream records one upstream call of an API.
func (m *metrics) upstream(api string, d time.Duration, err error) {
	am := m.forAPI(api)
	am.upDuration.Observe(d.Seconds())
	if err != nil {
		am.upErrors[proxy.Cause(err)].Inc()
	}
}

// authFailure counts a request refused by authentication or authorization:
// a 401, a 403 or ambiguous credentials. reason is the error's stable code.
func (m *metrics) authFailure(api string, err *Error) {
	if err == nil || (err.Status != 401 && err.Status != 403 && err != ErrAmbiguousCredentials) {
		return
	}
	m.authFailures.WithLabelValues(api, err.Code).Inc()
}

// forget drops the series of api (deleted from the config).
func (m *metrics) forget(api string) {
	m.perAPI.Delete(api)
	l := prometheus.Labels{"api": api}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.upDuration.DeletePartialMatch(l)
	m.upErrors.DeletePartialMatch(l)
	m.authFailures.DeletePartialMatch(l)
}
