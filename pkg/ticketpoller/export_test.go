package ticketpoller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SetHoldFor shortens how long reads with a rejected token stop, for tests.
func SetHoldFor(p *Poller, d time.Duration) { p.holdFor = d }

// Metrics are the poller's collectors, for tests.
type Metrics struct {
	Resolved, Reads, Checks, Reports *prometheus.CounterVec
	Resolve                          *prometheus.HistogramVec
	Unmatched, Foreign, Dead         prometheus.Counter
}

// Metrics returns the poller's collectors.
func (p *Poller) Metrics() Metrics {
	return Metrics{Resolved: p.m.resolved, Reads: p.m.reads,
		Checks: p.m.checks, Reports: p.m.reports, Resolve: p.m.resolve, Unmatched: p.m.unmatched, Foreign: p.m.foreign, Dead: p.m.dead}
}
