package sender_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// counter sums a counter of reg with the given label value.
func counter(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Waiting costs no message: 5,000 shipments waiting for their tracking
// number are held through several re-check periods, each on the message it
// has (NAKed with the delay on the wait lane), and the stream holds as many
// messages after those periods as after the first one.
func TestHeldUpdatesPublishNothingWhileTheyWait(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 orders")
	}
	n := testenv.EnvInt("HOLD_ORDERS", 5000)
	p := newPipeline(t, options{shippedDelay: time.Second})
	ids, _ := p.bulkOrders(t, n)
	p.shipAll(t, ids)
	cfg := senderConfig()
	cfg.TrackingRecheck = 300 * time.Millisecond
	cfg.Workers = 8
	r := p.startSender(cfg, "s1")
	str, err := p.js.Stream(context.Background(), broker.OrdersStream)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		info, err := str.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	held := func() float64 { return counter(t, r.reg, "sfsync_sender_deferred_total", "reason", "tracking") }
	p.eventually(3*time.Minute, "every shipment held once", func() bool { return held() >= float64(n) })
	first := msgs()
	p.eventually(5*time.Minute, "every shipment held three more times", func() bool { return held() >= float64(4*n) })
	if after := msgs(); after != first {
		t.Fatalf("the stream went from %d to %d messages while %d updates waited", first, after, n)
	}
	if got := len(p.sent()); got != 0 {
		t.Fatalf("%d orders sent without their tracking number before TRACKING_MAX_WAIT", got)
	}
	t.Logf("%d updates held %.0f times in all; the stream holds %d messages", n, held(), first)
}
