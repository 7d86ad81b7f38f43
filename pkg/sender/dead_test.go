package sender_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// No message loops for ever: an update whose task row cannot be read (a
// NULL where sfsync expects a number) fails every time it is handled. After
// MESSAGE_MAX_ERRORS failures its event goes to the dead-letter stream,
// with the subject it came from and the error, and the sender stops taking
// it; the other orders are sent meanwhile.
func TestRepeatedFailuresEndOnTheDeadLetterStream(t *testing.T) {
	p := newPipeline(t, options{})
	ctx := context.Background()
	if _, err := p.db.DB.Exec("ALTER TABLE ps_shoppingfeed_task_order MODIFY sfsync_attempts INT UNSIGNED NULL DEFAULT 0"); err != nil {
		t.Fatal(err)
	}
	good, goodSF := p.order()
	bad, _ := p.order()
	p.change(bad, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "the bad order's task", func() bool { return len(p.tasks(bad)) == 1 })
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_attempts = NULL WHERE id_order = ?", bad); err != nil {
		t.Fatal(err)
	}
	cfg := senderConfig()
	cfg.MaxErrors = 3
	r := p.startSender(cfg, "s1")
	p.change(good, shopfixture.StateCanceled)
	p.eventually(10*time.Second, "the good order sent", func() bool { return len(p.sent()[goodSF]) == 1 })
	dead, err := p.js.Stream(ctx, broker.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	p.eventually(30*time.Second, "the bad order's event on the dead-letter stream", func() bool {
		info, err := dead.Info(ctx)
		return err == nil && info.State.Msgs >= 1
	})
	// Every event of the bad order (its creation and its cancel) ends
	// there, and only those.
	info, err := dead.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := dead.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := events.DecodeChange(m.Data)
		if err != nil || ev.OrderID != bad {
			t.Fatalf("dead letter %s: order %d (%v), want %d", m.Subject, ev.OrderID, err, bad)
		}
		if m.Header.Get(events.HeaderDeadReason) == "" || m.Header.Get(events.HeaderDeadSubject) == "" || m.Header.Get(events.HeaderErrors) != strconv.Itoa(cfg.MaxErrors-1) {
			t.Fatalf("dead letter headers %v", m.Header)
		}
	}
	// Given up means given up: no delivery of it is left anywhere.
	p.eventually(5*time.Second, "nothing left pending", func() bool {
		for _, c := range []string{broker.SenderConsumer, broker.SenderWaitConsumer} {
			cons, err := p.js.Consumer(ctx, broker.OrdersStream, c)
			if err != nil {
				return false
			}
			info, err := cons.Info(ctx)
			if err != nil || info.NumPending+uint64(info.NumAckPending) != 0 {
				return false
			}
		}
		return true
	})
	info, _ = dead.Info(ctx)
	if got := counter0(t, r.reg, "sfsync_sender_dead_letters_total"); got != float64(info.State.Msgs) {
		t.Fatalf("dead_letters_total = %v, %d on the stream", got, info.State.Msgs)
	}
}
