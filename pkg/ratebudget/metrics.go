package ratebudget

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics observes bookings for Prometheus.
type Metrics struct {
	wait      prometheus.Histogram
	conflicts prometheus.Counter
	alone     prometheus.Counter
}

// NewMetrics registers the budget's metrics on reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "sfsync", Subsystem: "budget", Name: "wait_seconds",
			Help:    "How long a request waited for its slot in its token's shared budget.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30},
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfsync", Subsystem: "budget", Name: "conflicts_total",
			Help: "Bookings retried because another process booked the same token at once.",
		}),
		alone: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sfsync", Subsystem: "budget", Name: "unshared_total",
			Help: "Bookings made by this process alone because the broker could not be reached.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.wait, m.conflicts, m.alone)
	}
	return m
}

// Booked implements Observer.
func (m *Metrics) Booked(wait time.Duration, conflicts int, shared bool) {
	m.wait.Observe(wait.Seconds())
	m.conflicts.Add(float64(conflicts))
	if !shared {
		m.alone.Inc()
	}
}
