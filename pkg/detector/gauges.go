package detector

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/prestashop"
)

// gaugeInterval is how often the leader reads the shared gauges.
const gaugeInterval = 15 * time.Second

// sharedGauges are the gauges read from the database and the broker: every
// replica of every worker would read the same values, so only the leading
// detector exports them, and a sum over all targets is right. A replica
// that does not lead exports none of them (not zeros), so that its series
// go stale instead of adding to or hiding the leader's.
type sharedGauges struct {
	leading func() bool

	tasks, oldestDue, pending, ackPending, tickets, unreported *prometheus.Desc

	mu   sync.Mutex
	snap *gaugeSnapshot
}

type gaugeSnapshot struct {
	updates   prestashop.UpdateCounts
	tickets   prestashop.TicketCounts
	consumers []consumerBacklog
}

type consumerBacklog struct {
	stream, consumer    string
	pending, ackPending uint64
}

// sharedConsumers are the consumers whose backlog the leader exports.
var sharedConsumers = []struct{ stream, consumer string }{
	{broker.OrdersStream, broker.SenderConsumer}, {broker.OrdersStream, broker.SenderWaitConsumer},
	{broker.TicketsStream, broker.TicketConsumer}, {broker.TicketsStream, broker.TicketWaitConsumer},
}

func newSharedGauges(leading func() bool, reg prometheus.Registerer) *sharedGauges {
	g := &sharedGauges{
		leading: leading,
		tasks: prometheus.NewDesc("sfsync_tasks", "Updates in the module's task table, by state: due (waiting for a sender), waiting (for their due time), failed (any action, until retried). Exported by the leading detector only.",
			[]string{"state"}, nil),
		oldestDue: prometheus.NewDesc("sfsync_tasks_oldest_due_seconds", "How long the oldest due update has been due (0 when none is). Exported by the leading detector only.", nil, nil),
		pending: prometheus.NewDesc("sfsync_consumer_pending", "Messages of a JetStream consumer not yet delivered (the backlog). Exported by the leading detector only.",
			[]string{"stream", "consumer"}, nil),
		ackPending: prometheus.NewDesc("sfsync_consumer_ack_pending", "Messages of a JetStream consumer delivered and not yet acknowledged (including updates waiting for their due time). Exported by the leading detector only.",
			[]string{"stream", "consumer"}, nil),
		tickets: prometheus.NewDesc("sfsync_tickets_pending", "Shopping Feed tickets not resolved yet, by shop (0: order gone). Exported by the leading detector only.",
			[]string{"shop_id"}, nil),
		unreported: prometheus.NewDesc("sfsync_failures_unreported", "Failed tasks not yet in an error report, by shop. Exported by the leading detector only.",
			[]string{"shop_id"}, nil),
	}
	if reg != nil {
		reg.MustRegister(g)
	}
	return g
}

// Describe implements prometheus.Collector.
func (g *sharedGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.tasks, g.oldestDue, g.pending, g.ackPending, g.tickets, g.unreported} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the last reading, while leading.
func (g *sharedGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	s := g.snap
	g.mu.Unlock()
	if s == nil || !g.leading() {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(g.tasks, float64(s.updates.Due), "due")
	gauge(g.tasks, float64(s.updates.Waiting), "waiting")
	gauge(g.tasks, float64(s.updates.Failed), "failed")
	gauge(g.oldestDue, s.updates.OldestDueSeconds)
	for _, c := range s.consumers {
		gauge(g.pending, float64(c.pending), c.stream, c.consumer)
		gauge(g.ackPending, float64(c.ackPending), c.stream, c.consumer)
	}
	for shop, n := range s.tickets.Pending {
		gauge(g.tickets, float64(n), strconv.FormatUint(uint64(shop), 10))
	}
	for shop, n := range s.tickets.Unreported {
		gauge(g.unreported, float64(n), strconv.FormatUint(uint64(shop), 10))
	}
}

func (g *sharedGauges) set(s *gaugeSnapshot) {
	g.mu.Lock()
	g.snap = s
	g.mu.Unlock()
}

// refreshGauges reads the shared gauges every gaugeInterval while ctx (the
// lead) lasts, and forgets them when it ends.
func (d *Detector) refreshGauges(ctx context.Context) error {
	defer d.gauges.set(nil)
	t := time.NewTicker(gaugeInterval)
	defer t.Stop()
	for {
		if err := d.ReadGauges(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("read shared gauges", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ReadGauges reads the shared gauges now (the leader does so every 15 s).
func (d *Detector) ReadGauges(ctx context.Context) error {
	updates, err := d.store.CountUpdates(ctx)
	if err != nil {
		return err
	}
	tickets, err := d.store.TicketCounts(ctx)
	if err != nil {
		return err
	}
	s := &gaugeSnapshot{updates: updates, tickets: tickets}
	for _, c := range sharedConsumers {
		cons, err := d.js.Consumer(ctx, c.stream, c.consumer)
		if err != nil {
			continue // the keeper declares it again; no reading this time
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		s.consumers = append(s.consumers, consumerBacklog{stream: c.stream, consumer: c.consumer, pending: info.NumPending, ackPending: uint64(info.NumAckPending)})
	}
	d.gauges.set(s)
	return nil
}
