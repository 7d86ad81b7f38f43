package sender_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// postDirectly sends op for the order straight to the sandbox, as the
// earlier attempt of a sender that then died did, and returns the batch.
func (p *pipeline) postDirectly(sfID int64, op shoppingfeed.Operation) shoppingfeed.Batch {
	p.t.Helper()
	c, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: p.sb.URL, RateLimit: "none"}, nil, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	b, err := c.Operate(context.Background(), sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID), op,
		[]shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: sfID}}})
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// TestRecoveredBatchIsFollowedNotSentAgain: a sender POSTed a cancel, kept
// the batch id Shopping Feed answered with, and died before recording the
// outcome; the ticket then failed, so the order's status never shows it
// cancelled. The next sender records that batch for the ticket poller to
// follow (its failure goes into the report) instead of asking the status,
// which would look unapplied, and sending the cancel again.
func TestRecoveredBatchIsFollowedNotSentAgain(t *testing.T) {
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) {
		c.ScheduledFor, c.RunningFor = 10*time.Millisecond, 10*time.Millisecond
		c.Faults.TicketFailureRate = 1
	}})
	o, sfID := p.order()
	p.change(o, shopfixture.StateCanceled)
	p.crashAfterPost(o, "cancel")
	b := p.postDirectly(sfID, shoppingfeed.OpCancel)
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_posted_batch = ?, sfsync_store_id = ? WHERE id_order = ?",
		b.ID, fmt.Sprint(sfsandboxtest.StoreID), o); err != nil {
		t.Fatal(err)
	}
	r := p.startSender(senderConfig(), "s1")
	p.eventually(10*time.Second, "the batch recorded for the ticket poller", func() bool {
		ts := p.tasks(o)
		return len(ts) == 1 && ts[0].action == prestashop.ActionCheckTicketStatus
	})
	if ts := p.tasks(o); ts[0].batch != b.ID || ts[0].operation != "cancel" {
		t.Fatalf("task %+v, want the earlier batch %s", ts[0], b.ID)
	}
	if n := len(p.sent()[sfID]); n != 1 {
		t.Fatalf("the cancel reached Shopping Feed %d times, want once", n)
	}
	if got := counter0(t, r.reg, "sfsync_sender_batch_recovered_total"); got != 1 {
		t.Fatalf("sfsync_sender_batch_recovered_total = %v, want 1", got)
	}
}

// TestPendingTicketIsWaitedForNotSentAgain: a sender POSTed a cancel and
// died before keeping the batch id. Shopping Feed applies an operation when
// its ticket succeeds, seconds later: until then the order's status does
// not show it. The next sender does not take that for "not applied" while
// the POST is younger than APPLIED_CHECK_WAIT: it asks again, finds the
// cancel applied, and does not send it again. An intent whose POST is older
// than the wait and that Shopping Feed never applied is sent.
func TestPendingTicketIsWaitedForNotSentAgain(t *testing.T) {
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 2*time.Second, time.Second }})
	pending, pendingID := p.order()
	lost, lostID := p.order()
	p.change(pending, shopfixture.StateCanceled)
	p.change(lost, shopfixture.StateCanceled)
	p.crashAfterPost(pending, "cancel")
	p.crashAfterPost(lost, "cancel")
	p.postDirectly(pendingID, shoppingfeed.OpCancel)
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_posted_at = NOW() - INTERVAL 2 MINUTE WHERE id_order = ?", lost); err != nil {
		t.Fatal(err)
	}
	cfg := senderConfig()
	cfg.AppliedWait = time.Minute
	p.startSender(cfg, "s1")
	p.eventually(10*time.Second, "the lost cancel sent", func() bool { return len(p.sent()[lostID]) == 1 })
	p.eventually(15*time.Second, "the pending cancel found applied", func() bool { return len(p.tasks(pending)) == 0 })
	if n := len(p.sent()[pendingID]); n != 1 {
		t.Fatalf("the pending cancel reached Shopping Feed %d times, want once", n)
	}
	if p.processLog(pending, "%found already applied%") != 1 {
		t.Fatal("no process-log line says the update was found already applied")
	}
}

// claimThief is a rate limiter that, as the sender's POST is let through,
// gives the claims of the orders it names to another sender: the claims
// lapsed while the request waited, and another sender took them.
type claimThief struct {
	p      *pipeline
	mu     sync.Mutex
	orders []uint32
	stolen int
}

func (c *claimThief) Wait(_ context.Context, _ config.Secret, write bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !write || len(c.orders) == 0 {
		return nil
	}
	for _, o := range c.orders {
		if _, err := c.p.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_claim_owner = 'other', sfsync_claim_until = NOW(3) + INTERVAL 1 HOUR WHERE id_order = ?", o); err != nil {
			return err
		}
	}
	c.orders = nil
	c.stolen++
	return nil
}

func (c *claimThief) Throttled(config.Secret, time.Duration) {}

// TestLostClaimStopsThePost: a claim that lapsed while the POST waited
// for the rate budget, and that another sender took, stops the request
// before it leaves: that other sender may be sending the same update.
// Nothing is recorded as posted, and once the claim is free again the
// update goes out once.
func TestLostClaimStopsThePost(t *testing.T) {
	p := newPipeline(t, options{})
	o, sfID := p.order()
	thief := &claimThief{p: p, orders: []uint32{o}}
	r := p.startSenderWith(senderConfig(), "s1", shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 5 * time.Second, RateLimit: "10/2s", MaxRetries: 0},
		shoppingfeed.WithLimiter(thief))
	p.change(o, shopfixture.StateCanceled)
	p.eventually(10*time.Second, "the sender gave the update back, its claim taken while the POST waited", func() bool {
		return counter(t, r.reg, "sfsync_sender_deferred_total", "reason", "claim_lost") >= 1
	})
	thief.mu.Lock()
	stolen := thief.stolen
	thief.mu.Unlock()
	if stolen != 1 {
		t.Fatalf("claims taken %d times, want once", stolen)
	}
	var posted string
	if err := p.db.DB.QueryRow("SELECT COALESCE(sfsync_posted_op, '') FROM ps_shoppingfeed_task_order WHERE id_order = ?", o).Scan(&posted); err != nil {
		t.Fatal(err)
	}
	if n := len(p.sent()[sfID]); n != 0 || posted != "" {
		t.Fatalf("with its claim lost the sender sent %d cancels and recorded intent %q; want none", n, posted)
	}
	// The other sender gave the task back without sending.
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_claim_owner = NULL, sfsync_claim_until = NULL WHERE id_order = ?", o); err != nil {
		t.Fatal(err)
	}
	p.eventually(15*time.Second, "the cancel sent once the claim is free", func() bool { return len(p.sent()[sfID]) == 1 })
}

// TestRefusedPostLeavesNothingToFindOut: Shopping Feed answered the POST
// 503, which applied nothing; the next attempt sends without asking
// Shopping Feed whether the refused one was applied.
func TestRefusedPostLeavesNothingToFindOut(t *testing.T) {
	p := newPipeline(t, options{})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	p.sb.Sandbox.FailNext(503)
	p.change(o, shopfixture.StateCanceled)
	p.eventually(10*time.Second, "the cancel sent after the 503", func() bool { return len(p.sent()[sfID]) == 1 })
	var answered []int
	for _, r := range p.sb.Sandbox.Requests() {
		if strings.Contains(r.Path, "/order/") && r.Method == "GET" {
			t.Fatalf("the sender asked Shopping Feed about the order after a 503: %s", r.Path)
		}
		answered = append(answered, r.Status)
	}
	if len(answered) != 2 || answered[0] != 503 {
		t.Fatalf("requests answered %v, want the 503 and the accepted cancel", answered)
	}
}

// TestTimedOutPostIsFoundAppliedNotSentAgain: the POST got no answer
// within SF_TIMEOUT, yet Shopping Feed processed it. Neither the client
// nor the sender sends it again blindly: the next attempt finds the cancel
// applied.
func TestTimedOutPostIsFoundAppliedNotSentAgain(t *testing.T) {
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 10*time.Millisecond, 10*time.Millisecond }})
	var posts atomic.Int32
	h := p.sb.Sandbox.Handler()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && posts.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond) // the client gives up; the sandbox still processes it
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	cfg := senderConfig()
	cfg.AppliedWait = time.Minute
	p.startSenderWith(cfg, "s1", shoppingfeed.Config{BaseURL: front.URL, Timeout: 100 * time.Millisecond, RateLimit: "none", MaxRetries: 3})
	o, sfID := p.order()
	p.change(o, shopfixture.StateCanceled)
	p.eventually(15*time.Second, "the cancel found applied", func() bool { return p.processLog(o, "%found already applied%") == 1 })
	if n := len(p.sent()[sfID]); n != 1 {
		t.Fatalf("the cancel reached Shopping Feed %d times, want once", n)
	}
	if len(p.tasks(o)) != 0 {
		t.Fatalf("task left: %+v", p.tasks(o))
	}
}
