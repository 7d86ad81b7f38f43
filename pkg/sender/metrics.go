package sender

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	dueLag    prometheus.Histogram
	commitLag prometheus.Histogram
	batchSize prometheus.Histogram
	calls     *prometheus.CounterVec
	errors    *prometheus.CounterVec
	failed    prometheus.Counter
	dropped   prometheus.Counter
	// alreadyApplied counts updates an earlier attempt had POSTed, found
	// applied at Shopping Feed and not sent again.
	alreadyApplied prometheus.Counter
	// recovered counts earlier POSTs whose batch id was kept but not
	// recorded: recorded on the next attempt, not sent again.
	recovered prometheus.Counter
	deferred  *prometheus.CounterVec
	sent      *prometheus.CounterVec
	foreign   prometheus.Counter
	dead      prometheus.Counter
	// handedOff counts due messages handed to the shop's leading sender.
	handedOff prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		dueLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sfsync_sender_due_lag_seconds",
			Help: "Time from an update being due (update_at) to its POST.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}),
		commitLag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sfsync_sender_change_to_post_seconds",
			Help: "Time from the state change (order_history.date_add) to its POST, for updates due at once.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 16)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sfsync_sender_batch_size",
			Help: "Orders per operation POST.", Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 150, 200}}),
		calls:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_sender_api_calls_total", Help: "Operation POSTs, by operation and result."}, []string{"operation", "result"}),
		errors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_sender_errors_total", Help: "Errors, by kind."}, []string{"kind"}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_tasks_failed_total", Help: "Tasks marked failed."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_tasks_dropped_total", Help: "Tasks removed because the order's current state needs no update."}),
		alreadyApplied: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_already_applied_total",
			Help: "Updates an earlier attempt had sent without recording the outcome, found applied at Shopping Feed and not sent again."}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_batch_recovered_total",
			Help: "Updates an earlier attempt had sent, whose batch id was kept before that sender stopped: recorded and followed, not sent again."}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_sender_deferred_total", Help: "Updates put back to wait, by reason."}, []string{"reason"}),
		foreign:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_foreign_events_total", Help: "Events of another shop database passed back to the broker for that database's senders."}),
		dead:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_dead_letters_total", Help: "Messages given up to the dead-letter stream (SFSYNC_DEAD) after MESSAGE_MAX_ERRORS failures, or unreadable."}),
		handedOff: prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_sender_handed_over_total",
			Help: "Due updates handed to the sender that leads their shop, so that one sender fills each store's requests."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_sender_orders_sent_total", Help: "Orders accepted by Shopping Feed, by operation."}, []string{"operation"}),
	}
	if reg != nil {
		reg.MustRegister(m.dueLag, m.commitLag, m.batchSize, m.calls, m.errors, m.failed, m.dropped, m.alreadyApplied, m.recovered, m.deferred, m.sent, m.foreign, m.dead, m.handedOff)
	}
	return m
}
