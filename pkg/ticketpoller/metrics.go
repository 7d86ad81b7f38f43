package ticketpoller

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Resolution labels of the resolved counter and the time histogram.
const (
	resSucceed  = "succeed"
	resCanceled = "canceled"
	resFailed   = "failed"
	resNotFound = "batch_not_found"
	resExpired  = "expired"
)

type metrics struct {
	resolved  *prometheus.CounterVec
	resolve   *prometheus.HistogramVec
	reads     *prometheus.CounterVec
	checks    *prometheus.CounterVec
	unmatched prometheus.Counter
	foreign   prometheus.Counter
	dead      prometheus.Counter
	reports   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_tickets_resolved_total",
			Help: "Task rows resolved, by outcome: succeed, canceled, failed, batch_not_found, expired (pending past TICKET_MAX_AGE).",
		}, []string{"state"}),
		resolve: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sfsync_ticketpoller_resolve_seconds",
			Help:    "Time from Shopping Feed accepting a batch to its task row being resolved, by outcome.",
			Buckets: []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600},
		}, []string{"state"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_api_reads_total",
			Help: "Batch ticket reads from the Shopping Feed API (every page of a batch is one read), by result.",
		}, []string{"result"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_checks_total",
			Help: "Batch checks, by result: resolved (nothing left pending), pending (checked again later), held (token rejected or missing), retry (API unavailable), noop (nothing left to check).",
		}, []string{"result"}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_unmatched_tickets_total",
			Help: "Tickets that matched no task row of their batch (logged).",
		}),
		foreign: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_foreign_checks_total",
			Help: "Checks of another shop database passed back to the broker for that database's pollers.",
		}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_dead_letters_total",
			Help: "Checks given up to the dead-letter stream (SFSYNC_DEAD) after MESSAGE_MAX_ERRORS failures, or unreadable.",
		}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sfsync_ticketpoller_reports_total",
			Help: "Error reports, by result: sent (mailed), logged (no SMTP_URL), failed (retried next interval).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.resolved, m.resolve, m.reads, m.checks, m.unmatched, m.foreign, m.dead, m.reports} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
