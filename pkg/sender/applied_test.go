package sender_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// crashAfterPost leaves order's task as a sender that died between a POST
// of op and its commit leaves it: claimed by nobody, with the intent.
func (p *pipeline) crashAfterPost(order uint32, op string) {
	p.t.Helper()
	p.eventually(5*time.Second, "task saved", func() bool { return len(p.tasks(order)) == 1 })
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_posted_op = ?, sfsync_posted_at = NOW() WHERE id_order = ?", op, order); err != nil {
		p.t.Fatal(err)
	}
}

// TestAlreadyAppliedIsNotSentAgain: the cancel reached Shopping Feed and
// was applied, then the sender died before recording it. The next sender
// asks Shopping Feed, finds the order cancelled, and records the update as
// done without sending it again; an intent Shopping Feed never applied is
// sent.
func TestAlreadyAppliedIsNotSentAgain(t *testing.T) {
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 10*time.Millisecond, 10*time.Millisecond }})
	applied, appliedID := p.order()
	lost, lostID := p.order()
	p.change(applied, shopfixture.StateCanceled)
	p.change(lost, shopfixture.StateCanceled)
	p.crashAfterPost(applied, "cancel")
	p.crashAfterPost(lost, "cancel")
	// The first attempt of the applied one did reach Shopping Feed.
	c, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: p.sb.URL, RateLimit: "none"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Operate(context.Background(), sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID), shoppingfeed.OpCancel,
		[]shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: appliedID}}}); err != nil {
		t.Fatal(err)
	}
	p.eventually(5*time.Second, "the first cancel applied", func() bool {
		o, err := c.Order(context.Background(), sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID), appliedID)
		return err == nil && o.Status == shoppingfeed.OrderCancelled
	})

	p.startSender(senderConfig(), "s1")
	p.eventually(10*time.Second, "the lost cancel sent", func() bool { return len(p.sent()[lostID]) == 1 })
	p.eventually(10*time.Second, "the applied cancel done", func() bool { return len(p.tasks(applied)) == 0 })
	if n := len(p.sent()[appliedID]); n != 1 {
		t.Fatalf("the applied cancel reached Shopping Feed %d times, want once", n)
	}
	if p.processLog(applied, "%found already applied%") != 1 {
		t.Fatal("no process-log line says the update was found already applied")
	}
}

// TestUnreadableSuccessIsCheckedBeforeAnyNewAttempt: Shopping Feed takes
// the cancel (202) but its answer cannot be read. That is an unknown
// outcome, not a refusal: the order is not sent again order by order, and
// once Shopping Feed shows it applied it is recorded as done.
func TestUnreadableSuccessIsCheckedBeforeAnyNewAttempt(t *testing.T) {
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 10*time.Millisecond, 10*time.Millisecond }})
	var garbled atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		p.sb.Sandbox.Handler().ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/order/") && rec.Code == http.StatusAccepted && garbled.Add(1) == 1 {
			_, _ = w.Write([]byte("<html>proxy error</html>"))
			return
		}
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(proxy.Close)
	cfg := senderConfig()
	cfg.RetryBase = 200 * time.Millisecond
	p.startSenderWith(cfg, "s1", shoppingfeed.Config{BaseURL: proxy.URL, RateLimit: "none"})
	a, aID := p.order()
	b, bID := p.order()
	p.change(a, shopfixture.StateCanceled)
	p.change(b, shopfixture.StateCanceled)
	p.eventually(15*time.Second, "both cancels recorded", func() bool {
		sent := p.sent()
		return len(sent[aID]) > 0 && len(sent[bID]) > 0 && bothChecked(p, a, b)
	})
	sent := p.sent()
	if len(sent[aID]) != 1 || len(sent[bID]) != 1 {
		t.Fatalf("cancels received: %d and %d, want one each", len(sent[aID]), len(sent[bID]))
	}
	if garbled.Load() == 0 {
		t.Fatal("no answer was garbled: the test did not test anything")
	}
}

// bothChecked reports whether the orders' updates are recorded: found
// already applied, or sent and followed by the ticket poller.
func bothChecked(p *pipeline, orders ...uint32) bool {
	for _, o := range orders {
		ts := p.tasks(o)
		if len(ts) == 1 && ts[0].action == "CHECK_TICKET_SYNC_STATUS" {
			continue
		}
		if len(ts) != 0 {
			return false
		}
	}
	return true
}
