package shoppingfeed

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per attempt: one request, one count. Labels are the call's
// name and the HTTP status (or "error"/"timeout"), never a token.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	limitWait prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfsync", Subsystem: "shoppingfeed", Name: "requests_total",
			Help: "Requests sent to the Shopping Feed API, by call and HTTP status (error: no answer, timeout: attempt timed out).",
		}, []string{"operation", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sfsync", Subsystem: "shoppingfeed", Name: "request_duration_seconds",
			Help:    "Duration of one request to the Shopping Feed API, by call.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sfsync", Subsystem: "shoppingfeed", Name: "retries_total",
			Help: "Requests the client retried, by call and reason (throttled, server_error, network).",
		}, []string{"operation", "reason"}),
		limitWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sfsync", Subsystem: "shoppingfeed", Name: "rate_limit_wait_seconds",
			Help:    "Time a request waited for the client-side per-token rate limiter.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2, 5},
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.requests, err = register(reg, m.requests)
	if err != nil {
		return nil, err
	}
	m.duration, err = register(reg, m.duration)
	if err != nil {
		return nil, err
	}
	m.retries, err = register(reg, m.retries)
	if err != nil {
		return nil, err
	}
	m.limitWait, err = register(reg, m.limitWait)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description, so that several clients may share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
