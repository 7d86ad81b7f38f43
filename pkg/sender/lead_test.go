package sender_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// leadSender is a sender that takes part in shop leads, on a connection
// the test can cut (a kill -9: the lease is not released).
type leadSender struct {
	*runningSender
	nc *nats.Conn
}

func (p *pipeline) startLeadSender(name string, handOff time.Duration) *leadSender {
	p.t.Helper()
	reg := prometheus.NewRegistry()
	client, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 5 * time.Second, RateLimit: "none", MaxRetries: 0}, testLogger(), reg)
	if err != nil {
		p.t.Fatal(err)
	}
	nc := p.conn()
	cfg := senderConfig()
	cfg.ClaimTTL = 5 * time.Second
	s, err := sender.New(cfg, sender.Deps{Store: p.store, NC: nc, Client: client, Log: testLogger(), Registry: reg, Instance: name,
		LeaseTTL: p.leaseTTL, HandOffTimeout: handOff})
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSender{s: s, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = s.Run(ctx) }()
	p.t.Cleanup(func() { cancel(); <-r.done })
	return &leadSender{runningSender: r, nc: nc}
}

// cancelAtOnce cancels n new orders in one transaction, so that the
// detector publishes them together, and returns their Shopping Feed ids.
func (p *pipeline) cancelAtOnce(n int) []int64 {
	p.t.Helper()
	ctx := context.Background()
	var orders []uint32
	var ids []int64
	for range n {
		o, sfID := p.order()
		orders, ids = append(orders, o), append(ids, sfID)
	}
	tx, err := p.db.DB.BeginTx(ctx, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, o := range orders {
		if _, err := shopfixture.ChangeStateTx(ctx, tx, "ps_", o, shopfixture.StateCanceled); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		p.t.Fatal(err)
	}
	return ids
}

func (p *pipeline) allSent(ids []int64) bool {
	sent := p.sent()
	for _, id := range ids {
		if len(sent[id]) != 1 {
			return false
		}
	}
	return true
}

// TestOneSenderSendsEachShopsUpdates: of three senders, the one that leads
// the shop makes every POST; the others hand over the due updates they
// fetch, so one sender fills the store's requests.
func TestOneSenderSendsEachShopsUpdates(t *testing.T) {
	// A lead long enough that a loaded machine's late renewal never hands
	// it to another sender mid-test.
	p := newPipeline(t, options{leaseTTL: 10 * time.Second})
	// s1 takes the shop's lead with the first update (it runs alone then).
	s1 := p.startLeadSender("s1", 5*time.Second)
	first := p.cancelAtOnce(1)
	p.eventually(5*time.Second, "first cancel sent", func() bool { return p.allSent(first) })
	s2 := p.startLeadSender("s2", 5*time.Second)
	s3 := p.startLeadSender("s3", 5*time.Second)
	time.Sleep(200 * time.Millisecond) // s2 and s3 pull

	ids := p.cancelAtOnce(60)
	p.eventually(10*time.Second, "every cancel sent once", func() bool { return p.allSent(ids) })
	for _, r := range []*leadSender{s2, s3} {
		if n := counter0(t, r.reg, "sfsync_sender_api_calls_total"); n != 0 {
			t.Fatalf("a sender that does not lead the shop made %v POSTs", n)
		}
	}
	if counter0(t, s1.reg, "sfsync_sender_api_calls_total") == 0 {
		t.Fatal("the leader made no POST")
	}
	t.Logf("handed over: s2 %v, s3 %v; POSTs %v", counter0(t, s2.reg, "sfsync_sender_handed_over_total"),
		counter0(t, s3.reg, "sfsync_sender_handed_over_total"), counter0(t, s1.reg, "sfsync_sender_api_calls_total"))
}

// TestAKilledLeadersShopMovesOn: when the leading sender dies without
// releasing its lead, the others send the shop's updates themselves (a
// hand-over nobody answers), then one of them leads.
func TestAKilledLeadersShopMovesOn(t *testing.T) {
	// The killed leader's lead outlives the test: the others pass it over.
	p := newPipeline(t, options{leaseTTL: 10 * time.Second})
	s1 := p.startLeadSender("s1", 250*time.Millisecond)
	first := p.cancelAtOnce(1)
	p.eventually(5*time.Second, "first cancel sent", func() bool { return p.allSent(first) })
	s2 := p.startLeadSender("s2", 250*time.Millisecond)
	s3 := p.startLeadSender("s3", 250*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	s1.nc.Close() // kill -9: the lead is not released

	ids := p.cancelAtOnce(20)
	p.eventually(15*time.Second, "every cancel sent once after the leader died", func() bool { return p.allSent(ids) })
	more := p.cancelAtOnce(20)
	p.eventually(15*time.Second, "later cancels sent once", func() bool { return p.allSent(more) })
	if n := counter0(t, s2.reg, "sfsync_sender_api_calls_total") + counter0(t, s3.reg, "sfsync_sender_api_calls_total"); n == 0 {
		t.Fatal("the surviving senders made no POST")
	}
}
