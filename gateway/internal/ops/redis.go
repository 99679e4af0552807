package ops

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Redis calls the request path makes, the values of the call label.
const (
	CallLimitScript   = "limit_script"   // the batched limit and quota script
	CallSessionLookup = "session_lookup" // a key read on a session cache miss
)

// Kinds of Redis errors, the values of the kind label.
var redisErrorKinds = []string{"timeout", "connection", "reply", "other"}

// RedisCalls times the Redis calls of the request path and counts their
// errors by kind.
type RedisCalls struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// NewRedisCalls registers sluice_redis_call_duration_seconds{call} and
// sluice_redis_errors_total{call,kind}, every series present from the start.
func NewRedisCalls(reg prometheus.Registerer) (*RedisCalls, error) {
	r := &RedisCalls{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_redis_call_duration_seconds",
			Help:    "Time of the request path's Redis calls, by call (limit_script, session_lookup), failed calls included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"call"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_redis_errors_total",
			Help: "Failed Redis calls of the request path, by call and kind (timeout, connection, reply, other).",
		}, []string{"call", "kind"}),
	}
	for _, c := range []prometheus.Collector{r.duration, r.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, call := range []string{CallLimitScript, CallSessionLookup} {
		r.duration.WithLabelValues(call)
		for _, k := range redisErrorKinds {
			r.errors.WithLabelValues(call, k)
		}
	}
	return r, nil
}

// Observer returns the function a component calls after each call.
func (r *RedisCalls) Observer(call string) func(time.Duration, error) {
	h := r.duration.WithLabelValues(call)
	return func(d time.Duration, err error) {
		h.Observe(d.Seconds())
		if err != nil && !errors.Is(err, redis.Nil) {
			r.errors.WithLabelValues(call, errorKind(err)).Inc()
		}
	}
}

func errorKind(err error) string {
	var ne net.Error
	var re redis.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne), errors.Is(err, redis.ErrClosed):
		return "connection"
	case errors.As(err, &re):
		return "reply"
	}
	return "other"
}
