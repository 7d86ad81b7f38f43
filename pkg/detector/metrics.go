package detector

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	position   prometheus.Gauge
	lagRows    prometheus.Gauge
	lagSeconds prometheus.Gauge
	gapsOpen   prometheus.Gauge
	leaseHeld  prometheus.Gauge
	rowsRead   prometheus.Counter
	badRows    prometheus.Counter
	published  *prometheus.CounterVec
	gapsClosed *prometheus.CounterVec
	swept      *prometheus.CounterVec
	blocked    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		position:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfsync_detector_position", Help: "order_history id up to which every row is handled or tracked as a gap."}),
		lagRows:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfsync_detector_lag_rows", Help: "order_history rows above the position."}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfsync_detector_lag_seconds", Help: "Age of the oldest unread change (0 when caught up)."}),
		gapsOpen:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfsync_detector_gaps_open", Help: "order_history ids below the position not yet seen (uncommitted or rolled back)."}),
		leaseHeld:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "sfsync_detector_lease_held", Help: "1 while this replica is the active detector."}),
		rowsRead:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_detector_rows_read_total", Help: "order_history rows read."}),
		badRows:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sfsync_detector_rows_skipped_total", Help: "order_history rows skipped because they cannot be used (listed by sfsync status)."}),
		published:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_detector_events_published_total", Help: "Events published: order-status changes by whether the state is mapped (mapped, unmapped), and order slips sent as partial refunds (slip)."}, []string{"kind"}),
		gapsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_detector_gaps_closed_total", Help: "Gaps closed, by how: filled (row appeared), writers (every open transaction ended), grace."}, []string{"how"}),
		swept:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sfsync_detector_swept_total", Help: "Tasks republished by the sweeper, by action."}, []string{"action"}),
		blocked:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sfsync_detector_shop_blocked", Help: "1 while the conflict guard or the sync switch blocks a shop."}, []string{"shop_id"}),
	}
	if reg != nil {
		reg.MustRegister(m.position, m.lagRows, m.lagSeconds, m.gapsOpen, m.leaseHeld, m.rowsRead, m.badRows, m.published, m.gapsClosed, m.swept, m.blocked)
	}
	return m
}
