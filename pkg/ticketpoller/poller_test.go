package ticketpoller_test

import (
	"fmt"
	"mime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

func TestSucceedDeletesTaskAndLogsSuccess(t *testing.T) {
	e := newEnv(t, nil)
	byID, byRef := e.newOrder(false), e.newOrder(true)
	// An older failure of byID (a ship that failed before) is superseded by
	// this batch; a failure of another order, and a newer failure of byID,
	// are not.
	other := e.newOrder(false)
	oldFail := e.insertFailed(byID.ID, 1)
	otherFail := e.insertFailed(other.ID, 0)
	s := e.send([]order{byID, byRef}, sendOpts{})
	newerFail := e.insertFailed(byID.ID, 1<<30)

	r := e.start(testConfig(), "p1", nil)
	eventually(t, 10*time.Second, "both task rows are gone", func() bool {
		_, a := e.task(s.Tasks[byID.ID])
		_, b := e.task(s.Tasks[byRef.ID])
		return !a && !b
	})
	tickets := map[string]string{} // payload → ticket, from the sandbox
	for _, tk := range e.sb.Tickets(sfsandboxtest.StoreID) {
		tickets[string(tk.Payload)] = tk.ID
	}
	for _, o := range []order{byID, byRef} {
		lines := e.processLog(o.ID)
		var success []logLine
		for _, l := range lines {
			if l.Name == ticketpoller.LogName {
				success = append(success, l)
			}
		}
		if len(success) != 1 {
			t.Fatalf("order %d: %d process-log lines of %s, want 1: %+v", o.ID, len(success), ticketpoller.LogName, lines)
		}
		l := success[0]
		if l.Level != "success" || l.Object != "Order" || l.ObjectID != o.ID || !strings.Contains(l.Msg, s.BatchID) || !strings.Contains(l.Msg, "ship accepted") {
			t.Fatalf("order %d: log line %+v", o.ID, l)
		}
		found := false
		for _, id := range tickets {
			found = found || strings.Contains(l.Msg, "ticket "+id)
		}
		if !found {
			t.Fatalf("order %d: log line %q names none of the batch's tickets %v", o.ID, l.Msg, tickets)
		}
	}
	if _, ok := e.task(oldFail); ok {
		t.Fatal("the older failed task of the order is still there: a success supersedes it")
	}
	if _, ok := e.task(newerFail); !ok {
		t.Fatal("a newer failed task of the order was deleted")
	}
	if _, ok := e.task(otherFail); !ok {
		t.Fatal("another order's failed task was deleted")
	}
	if got := testutil.ToFloat64(r.p.Metrics().Resolved.WithLabelValues("succeed")); got != 2 {
		t.Fatalf("resolved{succeed} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.p.Metrics().Reads.WithLabelValues("ok")); got < 1 {
		t.Fatalf("api reads = %v", got)
	}
	if n := e.ticketReads(s.BatchID); n != 1 {
		t.Fatalf("%d reads of a batch whose tickets were final at once, want 1", n)
	}
}

// insertFailed adds a failed task of the order that carried history id
// (0: none), as an earlier batch would have left it.
func (e *env) insertFailed(orderID uint32, history uint64) uint64 {
	e.t.Helper()
	res, err := e.db.DB.ExecContext(e.ctx, "INSERT INTO ps_shoppingfeed_task_order (action, id_order, batch_id, date_add, date_upd,"+
		" sfsync_operation, sfsync_history_last, sfsync_failed_at, sfsync_error) VALUES ('CHECK_TICKET_SYNC_STATUS', ?, 'old-batch', NOW(), NOW(),"+
		" 'ship', NULLIF(?, 0), NOW(), 'earlier failure')", orderID, history)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return uint64(id)
}

func TestFailedTicketKeepsTaskAndIsMailed(t *testing.T) {
	e := newEnv(t, nil)
	srvTLS, cliTLS := selfSigned(t)
	smtp := newSMTPServer(t, "mailer", "p@ss:w0rd", srvTLS)
	smtp.up()
	ok, bad := e.newOrder(false), e.newOrder(false)
	good := e.send([]order{ok}, sendOpts{})
	failed := e.send([]order{bad}, sendOpts{noTracking: true})

	cfg := testConfig()
	if err := cfg.SMTP.UnmarshalText([]byte(smtp.url())); err != nil {
		t.Fatal(err)
	}
	cfg.ReportFrom = "sfsync@shop.example"
	cfg.ReportInterval = 200 * time.Millisecond
	r := e.start(cfg, "p1", cliTLS)

	eventually(t, 10*time.Second, "the failed ticket is recorded", func() bool {
		tk, _ := e.task(failed.Tasks[bad.ID])
		return tk.FailedAt.Valid
	})
	tk, ok2 := e.task(failed.Tasks[bad.ID])
	if !ok2 || tk.Action != "CHECK_TICKET_SYNC_STATUS" || !strings.Contains(tk.Error, "tracking number is required") || tk.Ticket == "" {
		t.Fatalf("failed task %+v (present %v)", tk, ok2)
	}
	lines := e.processLog(bad.ID)
	if len(lines) != 1 || lines[0].Level != "error" || lines[0].Name != ticketpoller.LogName || !strings.Contains(lines[0].Msg, "tracking number is required") {
		t.Fatalf("process log of the failed order: %+v", lines)
	}
	eventually(t, 10*time.Second, "the good order's task is gone", func() bool { _, ok := e.task(good.Tasks[ok.ID]); return !ok })

	eventually(t, 10*time.Second, "a report arrives", func() bool { return len(smtp.messages()) > 0 })
	eventually(t, 5*time.Second, "the failure is marked reported", func() bool {
		tk, _ := e.task(failed.Tasks[bad.ID])
		return tk.ReportedAt.Valid
	})
	// The module's own flag: switched back on, it does not mail this
	// failure again.
	if n := e.count("SELECT COUNT(*) FROM ps_shoppingfeed_order WHERE id_order = ? AND failed_ticket = 1", bad.ID); n != 1 {
		t.Fatal("the mailed failure's shoppingfeed_order.failed_ticket is not 1")
	}
	if n := e.count("SELECT COUNT(*) FROM ps_shoppingfeed_order WHERE id_order = ? AND failed_ticket = 1", ok.ID); n != 0 {
		t.Fatal("an order that did not fail has failed_ticket set")
	}
	time.Sleep(3 * cfg.ReportInterval) // a report that came twice would be here by now
	msgs := smtp.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "sfsync@shop.example" || len(m.To) != 1 || m.To[0] != "merchant@example.test" {
		t.Fatalf("envelope from %q to %v; want the shop's PS_SHOP_EMAIL", m.From, m.To)
	}
	smtp.mu.Lock()
	authed := append([]string(nil), smtp.auth...)
	smtp.mu.Unlock()
	if len(authed) != 1 || authed[0] != "mailer" {
		t.Fatalf("authenticated users %v", authed)
	}
	pm := parseMail(t, m.Data)
	if !strings.Contains(pm.Header.Get("Subject"), "1 order update failed") {
		t.Fatalf("subject %q", pm.Header.Get("Subject"))
	}
	for _, part := range []string{"text/plain", "text/html"} {
		body := pm.Parts[part]
		for _, want := range []string{bad.Reference, "amazon", bad.MPRef, "ship", "Shipped", "A tracking number is required"} {
			if !strings.Contains(body, want) {
				t.Fatalf("%s part lacks %q:\n%s", part, want, body)
			}
		}
		if strings.Contains(body, ok.Reference) {
			t.Fatalf("%s part names the order that succeeded:\n%s", part, body)
		}
	}
	if got := testutil.ToFloat64(r.p.Metrics().Reports.WithLabelValues("sent")); got != 1 {
		t.Fatalf("reports{sent} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.p.Metrics().Resolved.WithLabelValues("failed")); got != 1 {
		t.Fatalf("resolved{failed} = %v, want 1", got)
	}
	if strings.Contains(e.logs.String(), "p@ss:w0rd") || strings.Contains(e.logs.String(), sfsandboxtest.Token) {
		t.Fatal("a secret reached the log")
	}
}

func TestPendingThenSucceed(t *testing.T) {
	e := newEnv(t, func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 400*time.Millisecond, 800*time.Millisecond })
	o := e.newOrder(false)
	// The sender set sfsync_progress_at at the POST; pretend that was a
	// while ago, so that the checks' own updates show.
	s := e.send([]order{o}, sendOpts{})
	if _, err := e.db.DB.ExecContext(e.ctx, "UPDATE ps_shoppingfeed_task_order SET sfsync_progress_at = NOW() - INTERVAL 1 HOUR WHERE id_shoppingfeed_task_order = ?", s.Tasks[o.ID]); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.BackoffMin, cfg.BackoffMax = 150*time.Millisecond, 300*time.Millisecond
	r := e.start(cfg, "p1", nil)

	eventually(t, 5*time.Second, "a pending check recorded progress", func() bool {
		return e.count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE id_shoppingfeed_task_order = ?"+
			" AND sfsync_progress_at > NOW() - INTERVAL 30 MINUTE", s.Tasks[o.ID]) == 1
	})
	eventually(t, 10*time.Second, "the task row is gone", func() bool { _, ok := e.task(s.Tasks[o.ID]); return !ok })
	// While the batch waited, it held no slot of the consumer new batches
	// come in on: the first check was acked once it had published the
	// re-check, and never came back there. (The progress seen above is
	// written before that ack, so the ack may still be on its way then.)
	eventually(t, 5*time.Second, "the first check is acked", func() bool {
		return e.consumerInfo(broker.TicketConsumer).AckFloor.Consumer >= 1
	})
	if ci := e.consumerInfo(broker.TicketConsumer); ci.Delivered.Consumer != 1 || ci.NumAckPending != 0 || ci.NumRedelivered != 0 {
		t.Fatalf("the check consumer delivered %d times, %d pending ack, %d redelivered: a waiting batch held its slot",
			ci.Delivered.Consumer, ci.NumAckPending, ci.NumRedelivered)
	}
	// Resolved 1.2 s after the POST, checked every 150 ms doubling to 300 ms:
	// some 6 reads. Many more would mean re-checks that do not wait.
	if n := e.ticketReads(s.BatchID); n < 2 || n > 15 {
		t.Fatalf("%d reads: a batch pending at first must be read again, after a backoff", n)
	}
	if got := testutil.ToFloat64(r.p.Metrics().Checks.WithLabelValues("pending")); got < 1 {
		t.Fatalf("checks{pending} = %v", got)
	}
	lines := e.processLog(o.ID)
	if len(lines) != 1 || lines[0].Level != "success" {
		t.Fatalf("process log %+v", lines)
	}
	if w := e.consumerInfo(broker.TicketWaitConsumer); w.Delivered.Consumer == 0 {
		t.Fatal("no re-check went through the wait consumer")
	}
}

func TestBatchNotFoundFailsItsTasks(t *testing.T) {
	e := newEnv(t, nil)
	o := e.newOrder(false)
	task := e.insertTask(o.ID, "0123456789abcdef01234567", e.shop.TokenID)
	e.publish(&sfsyncv1.TicketCheck{StoreId: e.shop.StoreID, ShopId: 1, BatchId: "0123456789abcdef01234567", Operation: "ship",
		TokenId: e.shop.TokenID, Orders: []*sfsyncv1.TicketOrder{{OrderId: o.ID, TaskId: task, SfOrderId: strconv.FormatInt(o.SFID, 10)}}}, "")
	r := e.start(testConfig(), "p1", nil)
	eventually(t, 10*time.Second, "the task is failed", func() bool { tk, _ := e.task(task); return tk.FailedAt.Valid })
	tk, _ := e.task(task)
	if !strings.Contains(tk.Error, "404") || !strings.Contains(tk.Error, "0123456789abcdef01234567") {
		t.Fatalf("error %q", tk.Error)
	}
	if lines := e.processLog(o.ID); len(lines) != 1 || lines[0].Level != "error" {
		t.Fatalf("process log %+v", lines)
	}
	if got := testutil.ToFloat64(r.p.Metrics().Resolved.WithLabelValues("batch_not_found")); got != 1 {
		t.Fatalf("resolved{batch_not_found} = %v", got)
	}
}

func TestStillPendingAfterMaxAgeFails(t *testing.T) {
	e := newEnv(t, func(c *sfsandbox.Config) {
		c.ScheduledFor, c.RunningFor = 100*time.Millisecond, time.Hour
	})
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{})
	cfg := testConfig()
	cfg.MaxAge = 1500 * time.Millisecond
	e.start(cfg, "p1", nil)
	eventually(t, 10*time.Second, "the task is failed", func() bool { tk, _ := e.task(s.Tasks[o.ID]); return tk.FailedAt.Valid })
	tk, _ := e.task(s.Tasks[o.ID])
	if !strings.Contains(tk.Error, "still running after 1.5s") {
		t.Fatalf("error %q", tk.Error)
	}
	if n := e.ticketReads(s.BatchID); n < 2 {
		t.Fatalf("%d reads: the batch was not followed while pending", n)
	}
}

func TestSeveralPollersHandleEachBatchAndReportOnce(t *testing.T) {
	e := newEnv(t, func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 100*time.Millisecond, 200*time.Millisecond })
	smtp := newSMTPServer(t, "", "", nil)
	smtp.up()
	cfg := testConfig()
	if err := cfg.SMTP.UnmarshalText([]byte(smtp.url())); err != nil {
		t.Fatal(err)
	}
	cfg.ReportFrom, cfg.ReportTo = "sfsync@shop.example", "ops@shop.example, boss@shop.example"
	cfg.ReportInterval = 100 * time.Millisecond
	var rs []*running
	for i := range 3 {
		rs = append(rs, e.start(cfg, fmt.Sprintf("p%d", i), nil))
	}
	var all, failing []order
	var tasks []uint64
	for b := range 12 {
		var batch []order
		for range 4 {
			batch = append(batch, e.newOrder(b%3 == 2))
		}
		s := e.send(batch, sendOpts{noTracking: b%4 == 3})
		// The sweeper republishes some batches: checked twice, resolved once.
		if b%2 == 0 {
			e.publish(&sfsyncv1.TicketCheck{StoreId: "", BatchId: s.BatchID, Orders: []*sfsyncv1.TicketOrder{{OrderId: batch[0].ID, TaskId: s.Tasks[batch[0].ID]}}}, "")
		}
		all = append(all, batch...)
		if b%4 == 3 {
			failing = append(failing, batch...)
		}
		for _, id := range s.Tasks {
			tasks = append(tasks, id)
		}
	}
	eventually(t, 20*time.Second, "every task is resolved", func() bool {
		return e.count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'CHECK_TICKET_SYNC_STATUS' AND sfsync_failed_at IS NULL") == 0
	})
	eventually(t, 10*time.Second, "every failure is reported", func() bool {
		return e.count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE sfsync_failed_at IS NOT NULL AND sfsync_reported_at IS NULL") == 0
	})
	time.Sleep(5 * cfg.ReportInterval)
	for _, o := range all {
		if n := len(e.processLog(o.ID)); n != 1 {
			t.Fatalf("order %d has %d process-log lines, want 1: %+v", o.ID, n, e.processLog(o.ID))
		}
	}
	if n := e.count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE sfsync_failed_at IS NOT NULL"); n != len(failing) {
		t.Fatalf("%d failed tasks, want %d", n, len(failing))
	}
	mentions := map[string]int{}
	for _, m := range smtp.messages() {
		if len(m.To) != 2 {
			t.Fatalf("mail to %v, want REPORT_TO's two addresses", m.To)
		}
		text := parseMail(t, m.Data).Parts["text/plain"]
		for _, o := range all {
			if strings.Contains(text, o.Reference+" ") {
				mentions[o.Reference]++
			}
		}
	}
	for _, o := range failing {
		if mentions[o.Reference] != 1 {
			t.Fatalf("order %s is in %d reports, want 1 (mentions %v)", o.Reference, mentions[o.Reference], mentions)
		}
	}
	if len(mentions) != len(failing) {
		t.Fatalf("reports mention %d orders, want the %d that failed", len(mentions), len(failing))
	}
	var sent float64
	for _, r := range rs {
		sent += testutil.ToFloat64(r.p.Metrics().Reports.WithLabelValues("sent"))
	}
	if int(sent) != len(smtp.messages()) {
		t.Fatalf("reports{sent} adds up to %v over the replicas, %d mails arrived", sent, len(smtp.messages()))
	}
}

func TestConcurrentChecksOfOneBatchResolveItOnce(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 3 {
		e.start(testConfig(), fmt.Sprintf("p%d", i), nil)
	}
	var orders []order
	for b := range 10 {
		batch := []order{e.newOrder(false), e.newOrder(true), e.newOrder(false)}
		s := e.send(batch, sendOpts{noTracking: b%2 == 0, noPublish: true})
		for i := range 4 { // the sender's, and the sweeper's, and more
			e.publish(s.Check, fmt.Sprintf("dup.%s.%d", s.BatchID, i))
		}
		orders = append(orders, batch...)
	}
	eventually(t, 20*time.Second, "every task is resolved", func() bool {
		return e.count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'CHECK_TICKET_SYNC_STATUS' AND sfsync_failed_at IS NULL") == 0
	})
	time.Sleep(300 * time.Millisecond)
	for _, o := range orders {
		if lines := e.processLog(o.ID); len(lines) != 1 {
			t.Fatalf("order %d has %d process-log lines, want 1: %+v", o.ID, len(lines), lines)
		}
	}
}

func TestSMTPDownThenUpDeliversTheReport(t *testing.T) {
	e := newEnv(t, nil)
	smtp := newSMTPServer(t, "", "", nil) // not listening yet
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{noTracking: true})
	cfg := testConfig()
	if err := cfg.SMTP.UnmarshalText([]byte(smtp.url())); err != nil {
		t.Fatal(err)
	}
	cfg.ReportFrom = "sfsync@shop.example"
	cfg.ReportInterval = 150 * time.Millisecond
	r := e.start(cfg, "p1", nil)
	eventually(t, 10*time.Second, "a report fails", func() bool {
		return testutil.ToFloat64(r.p.Metrics().Reports.WithLabelValues("failed")) >= 2
	})
	if tk, _ := e.task(s.Tasks[o.ID]); !tk.FailedAt.Valid || tk.ReportedAt.Valid {
		t.Fatalf("task %+v: want failed and not reported while SMTP is down", tk)
	}
	smtp.up()
	eventually(t, 10*time.Second, "the report arrives", func() bool { return len(smtp.messages()) == 1 })
	eventually(t, 5*time.Second, "the failure is marked reported", func() bool { tk, _ := e.task(s.Tasks[o.ID]); return tk.ReportedAt.Valid })
	if text := parseMail(t, smtp.messages()[0].Data).Parts["text/plain"]; !strings.Contains(text, o.Reference) {
		t.Fatalf("report:\n%s", text)
	}
	if e.logs.count("error report not sent; retrying next interval") == 0 {
		t.Fatal("the failed sends were not logged")
	}
}

func TestNoSMTPReportsToTheLogOnce(t *testing.T) {
	e := newEnv(t, nil)
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{noTracking: true})
	r := e.start(testConfig(), "p1", nil)
	eventually(t, 10*time.Second, "the task is failed", func() bool { tk, _ := e.task(s.Tasks[o.ID]); return tk.FailedAt.Valid })
	// A failure of the sender (SYNC_STATUS) goes into the report too.
	other := e.newOrder(false)
	if _, err := e.db.DB.ExecContext(e.ctx, "INSERT INTO ps_shoppingfeed_task_order (action, id_order, date_add, date_upd, sfsync_operation,"+
		" sfsync_failed_at, sfsync_error) VALUES ('SYNC_STATUS', ?, NOW(), NOW(), 'ship', NOW(), 'send refused: 400 Bad Request')", other.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.p.ReportOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.logs.count("error report: order update failed", o.Reference, "tracking number"); n != 1 {
		t.Fatalf("%d log report lines for the ticket failure, want 1:\n%s", n, e.logs)
	}
	if n := e.logs.count("error report: order update failed", other.Reference, "send refused"); n != 1 {
		t.Fatalf("%d log report lines for the send failure, want 1", n)
	}
	// Logged, not mailed: the module may still mail it if switched back on.
	if n := e.count("SELECT COUNT(*) FROM ps_shoppingfeed_order WHERE id_order IN (?, ?) AND failed_ticket = 1", o.ID, other.ID); n != 0 {
		t.Fatalf("%d orders with failed_ticket set by a report that was only logged", n)
	}
	if e.logs.count("SMTP_URL is not set") != 1 {
		t.Fatal("no startup warning about SMTP_URL")
	}
	if got := testutil.ToFloat64(r.p.Metrics().Reports.WithLabelValues("logged")); got != 1 {
		t.Fatalf("reports{logged} = %v, want 1", got)
	}
}

func TestRejectedTokenHoldsAndRetries(t *testing.T) {
	e := newEnv(t, nil)
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{noPublish: true})
	const badToken = "revoked-token-value"
	if _, err := e.db.DB.ExecContext(e.ctx, "UPDATE ps_shoppingfeed_token SET content = ?", badToken); err != nil {
		t.Fatal(err)
	}
	e.publish(s.Check, "")
	cfg := testConfig()
	cfg.BackoffMin, cfg.BackoffMax = 50*time.Millisecond, 100*time.Millisecond
	r := e.start(cfg, "p1", nil)
	ticketpoller.SetHoldFor(r.p, 300*time.Millisecond)
	eventually(t, 10*time.Second, "several reads are refused", func() bool {
		return testutil.ToFloat64(r.p.Metrics().Reads.WithLabelValues("token_rejected")) >= 2
	})
	if tk, ok := e.task(s.Tasks[o.ID]); !ok || tk.FailedAt.Valid {
		t.Fatalf("task %+v present %v: a rejected token must drop nothing", tk, ok)
	}
	if n := e.logs.count("shopping feed rejected the token"); n != 1 {
		t.Fatalf("%d loud lines about the token, want 1 a minute", n)
	}
	if held := testutil.ToFloat64(r.p.Metrics().Checks.WithLabelValues("held")); held < 3 {
		t.Fatalf("checks{held} = %v", held)
	}
	if _, err := e.db.DB.ExecContext(e.ctx, "UPDATE ps_shoppingfeed_token SET content = ?", sfsandboxtest.Token); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the task resolves once the token is fixed", func() bool { _, ok := e.task(s.Tasks[o.ID]); return !ok })
	if strings.Contains(e.logs.String(), badToken) || strings.Contains(e.logs.String(), sfsandboxtest.Token) {
		t.Fatal("a token reached the log")
	}
}

func TestSweeperMessageIsResolvedFromTheDatabase(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.newOrder(false), e.newOrder(true)
	s := e.send([]order{a, b}, sendOpts{noPublish: true, tokenID: 0})
	// What the sweeper publishes: order and task ids, no store, no token.
	if _, err := e.db.DB.ExecContext(e.ctx, "UPDATE ps_shoppingfeed_task_order SET sfsync_token_id = NULL WHERE batch_id = ?", s.BatchID); err != nil {
		t.Fatal(err)
	}
	e.publish(&sfsyncv1.TicketCheck{StoreId: "", ShopId: 1, BatchId: s.BatchID,
		Orders: []*sfsyncv1.TicketOrder{{OrderId: a.ID, TaskId: s.Tasks[a.ID]}, {OrderId: b.ID, TaskId: s.Tasks[b.ID]}}}, "")
	e.start(testConfig(), "p1", nil)
	eventually(t, 10*time.Second, "both tasks are gone", func() bool {
		_, x := e.task(s.Tasks[a.ID])
		_, y := e.task(s.Tasks[b.ID])
		return !x && !y
	})
}

func TestEnvTokenIsTheLastResort(t *testing.T) {
	e := newEnv(t, nil)
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{noPublish: true})
	if _, err := e.db.DB.ExecContext(e.ctx, "UPDATE ps_shoppingfeed_token SET active = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.DB.ExecContext(e.ctx, "UPDATE ps_shoppingfeed_task_order SET sfsync_token_id = NULL"); err != nil {
		t.Fatal(err)
	}
	s.Check.TokenId = 0
	e.publish(s.Check, "")
	cfg := testConfig()
	r := e.start(cfg, "p1", nil)
	eventually(t, 5*time.Second, "the batch is held for want of a token", func() bool {
		return testutil.ToFloat64(r.p.Metrics().Checks.WithLabelValues("held")) >= 1
	})
	if e.logs.count("cannot read the tickets of a batch", "SF_TOKEN is not set") != 1 {
		t.Fatalf("want one loud line naming SF_TOKEN:\n%s", e.logs)
	}
	r.stop()
	cfg.Token = sfsandboxtest.Token
	e.start(cfg, "p2", nil)
	eventually(t, 10*time.Second, "SF_TOKEN reads the batch", func() bool { _, ok := e.task(s.Tasks[o.ID]); return !ok })
}

func TestUnmatchedTicketIsLogged(t *testing.T) {
	e := newEnv(t, nil)
	a, stranger := e.newOrder(false), e.newOrder(false)
	s := e.send([]order{a, stranger}, sendOpts{skipTask: map[uint32]bool{stranger.ID: true}})
	r := e.start(testConfig(), "p1", nil)
	eventually(t, 10*time.Second, "the task is gone", func() bool { _, ok := e.task(s.Tasks[a.ID]); return !ok })
	eventually(t, 5*time.Second, "the stranger's ticket is logged", func() bool {
		return e.logs.count("ticket matches no order of its batch", strconv.FormatInt(stranger.SFID, 10)) == 1
	})
	if got := testutil.ToFloat64(r.p.Metrics().Unmatched); got != 1 {
		t.Fatalf("unmatched = %v", got)
	}
}

func TestBadMessageIsTerminated(t *testing.T) {
	e := newEnv(t, nil)
	e.start(testConfig(), "p1", nil)
	m := nats.NewMsg(events.TicketCheckSubject("1001"))
	m.Data = []byte("{not json")
	if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the message is terminated", func() bool {
		info := e.consumerInfo(broker.TicketConsumer)
		return info.Delivered.Consumer == 1 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	if e.logs.count("ticket check message terminated") != 1 {
		t.Fatalf("not logged:\n%s", e.logs)
	}
	time.Sleep(300 * time.Millisecond)
	if info := e.consumerInfo(broker.TicketConsumer); info.Delivered.Consumer != 1 {
		t.Fatalf("delivered %d times: a terminated message came back", info.Delivered.Consumer)
	}
}

func TestShutdownLetsChecksFinish(t *testing.T) {
	e := newEnv(t, func(c *sfsandbox.Config) { c.Faults.Latency = time.Second })
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{})
	r := e.start(testConfig(), "p1", nil)
	eventually(t, 5*time.Second, "the check is delivered", func() bool {
		return e.consumerInfo(broker.TicketConsumer).NumAckPending == 1
	})
	// Delivered is not yet handled: a message still on its way to the
	// fetching worker when shutdown begins goes back to the broker after
	// AckWait instead. Give the handler time to be inside its one-second
	// API read, which shutdown must let finish.
	time.Sleep(300 * time.Millisecond)
	r.stop()
	if _, ok := e.task(s.Tasks[o.ID]); ok {
		t.Fatal("the check in flight at shutdown did not finish")
	}
	eventually(t, 2*time.Second, "its message is acked", func() bool {
		return e.consumerInfo(broker.TicketConsumer).NumAckPending == 0
	})
}

// With SMTP_URL unset, the report goes through the shop's own mail
// settings (PS_MAIL_METHOD 2, STARTTLS, AUTH), from and to PS_SHOP_EMAIL,
// in the shop's language; the shop's mail password never reaches the log.
func TestReportGoesThroughTheShopsOwnMailSettings(t *testing.T) {
	e := newEnv(t, nil)
	srvTLS, cliTLS := selfSigned(t)
	const password = "Sh0p-Mail-Pa55"
	smtp := newSMTPServer(t, "shop@example.test", password, srvTLS)
	smtp.up()
	host, port, _ := strings.Cut(smtp.addr, ":")
	fr, err := e.fx.AddLanguage(e.ctx, "fr", "Français (French)")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		prestashop.KeyMailMethod: "2", prestashop.KeyMailServer: host, prestashop.KeyMailPort: port,
		prestashop.KeyMailUser: "shop@example.test", prestashop.KeyMailPassword: password, prestashop.KeyMailEncryption: "tls",
		prestashop.KeyLangDefault: strconv.FormatUint(uint64(fr), 10),
	} {
		if err := e.fx.SetConfig(e.ctx, shopfixture.ShopScope(1), k, v); err != nil {
			t.Fatal(err)
		}
	}
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{noTracking: true})
	r := e.start(testConfig(), "p1", cliTLS) // no SMTP_URL, no REPORT_FROM
	eventually(t, 10*time.Second, "the task is failed", func() bool { tk, _ := e.task(s.Tasks[o.ID]); return tk.FailedAt.Valid })
	if n, err := r.p.ReportOnce(e.ctx); err != nil || n != 1 {
		t.Fatalf("report: %d failures, %v", n, err)
	}
	msgs := smtp.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1", len(msgs))
	}
	if m := msgs[0]; m.From != "merchant@example.test" || len(m.To) != 1 || m.To[0] != "merchant@example.test" {
		t.Fatalf("envelope from %q to %v; want the shop's PS_SHOP_EMAIL both ways", m.From, m.To)
	}
	smtp.mu.Lock()
	authed := append([]string(nil), smtp.auth...)
	smtp.mu.Unlock()
	if len(authed) != 1 || authed[0] != "shop@example.test" {
		t.Fatalf("authenticated users %v, want the shop's PS_MAIL_USER", authed)
	}
	pm := parseMail(t, msgs[0].Data)
	subj, _ := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	if subj != "[Demo shop] Shopping Feed : 1 mise à jour de commande a échoué" {
		t.Fatalf("subject %q, want the French one", subj)
	}
	for _, part := range []string{"text/plain", "text/html"} {
		for _, want := range []string{"Référence marketplace", "État actuel", o.Reference} {
			if !strings.Contains(pm.Parts[part], want) {
				t.Fatalf("%s part lacks %q:\n%s", part, want, pm.Parts[part])
			}
		}
	}
	if tk, _ := e.task(s.Tasks[o.ID]); !tk.ReportedAt.Valid {
		t.Fatal("the failure is not marked reported")
	}
	if strings.Contains(e.logs.String(), password) {
		t.Fatal("the shop's mail password is in the log")
	}
}

// A shop that mails with PHP's mail() (or never) cannot have its report
// mailed: the log says why and how to set SMTP_URL once per shop, and the
// report goes to the log.
func TestShopWithoutSMTPLogsWhyOnce(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.fx.SetConfig(e.ctx, shopfixture.Global, prestashop.KeyMailMethod, "1"); err != nil {
		t.Fatal(err)
	}
	first := e.newOrder(false)
	s := e.send([]order{first}, sendOpts{noTracking: true})
	r := e.start(testConfig(), "p1", nil)
	eventually(t, 10*time.Second, "the task is failed", func() bool { tk, _ := e.task(s.Tasks[first.ID]); return tk.FailedAt.Valid })
	if _, err := r.p.ReportOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	second := e.newOrder(false)
	s2 := e.send([]order{second}, sendOpts{noTracking: true})
	eventually(t, 10*time.Second, "the second task is failed", func() bool { tk, _ := e.task(s2.Tasks[second.ID]); return tk.FailedAt.Valid })
	if _, err := r.p.ReportOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.logs.count("error report cannot be mailed for this shop", "PHP's mail()", "SMTP_URL"); n != 1 {
		t.Fatalf("%d lines saying why the report cannot be mailed, want 1:\n%s", n, e.logs)
	}
	for _, o := range []order{first, second} {
		if n := e.logs.count("error report: order update failed", o.Reference); n != 1 {
			t.Fatalf("%d log report lines for order %s, want 1", n, o.Reference)
		}
	}
}

// A check of another shop database on the same broker is passed back, not
// read against this poller's database (where its task ids are other
// orders' tasks); a check of its own database is handled.
func TestCheckOfAnotherShopDatabaseIsPassedBack(t *testing.T) {
	e := newEnv(t, nil)
	o := e.newOrder(false)
	task := e.insertTask(o.ID, "0123456789abcdef01234567", e.shop.TokenID)
	check := func(db, batch string) *sfsyncv1.TicketCheck {
		return &sfsyncv1.TicketCheck{ShopDb: db, StoreId: e.shop.StoreID, ShopId: 1, BatchId: batch, Operation: "ship",
			TokenId: e.shop.TokenID, Orders: []*sfsyncv1.TicketOrder{{OrderId: o.ID, TaskId: task, SfOrderId: strconv.FormatInt(o.SFID, 10)}}}
	}
	e.publish(check("another_shop", "0123456789abcdef01234567"), "")
	r := e.start(testConfig(), "p1", nil)
	foreign := func() float64 { return testutil.ToFloat64(r.p.Metrics().Foreign) }
	eventually(t, 10*time.Second, "the check passed back three times", func() bool { return foreign() >= 3 })
	if tk, ok := e.task(task); !ok || tk.FailedAt.Valid {
		t.Fatalf("the task of this database was judged on another database's check: %+v", tk)
	}
	if n := e.ticketReads("0123456789abcdef01234567"); n != 0 {
		t.Fatalf("%d ticket reads for another database's batch", n)
	}
	own, err := e.store.DatabaseName(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(check(own, "0123456789abcdef01234567"), "own")
	eventually(t, 10*time.Second, "the task is failed by its own database's check", func() bool { tk, _ := e.task(task); return tk.FailedAt.Valid })
}

// No check loops for ever: a batch whose task row cannot be read (a zero
// date_upd, which PrestaShop's non-strict sessions can write) fails every
// check. After MESSAGE_MAX_ERRORS failures the check goes to the
// dead-letter stream, with the subject it came from and the error, and
// nothing of it is left on the poller's consumers.
func TestRepeatedCheckFailuresEndOnTheDeadLetterStream(t *testing.T) {
	e := newEnv(t, nil)
	o := e.newOrder(false)
	const batch = "0123456789abcdef0123dead"
	task := e.insertTask(o.ID, batch, e.shop.TokenID)
	conn, err := e.db.DB.Conn(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"SET SESSION sql_mode = ''", "UPDATE ps_shoppingfeed_task_order SET date_upd = '0000-00-00 00:00:00' WHERE id_shoppingfeed_task_order = " + strconv.FormatUint(task, 10)} {
		if _, err := conn.ExecContext(e.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(&sfsyncv1.TicketCheck{StoreId: e.shop.StoreID, ShopId: 1, BatchId: batch, Operation: "ship", TokenId: e.shop.TokenID,
		Orders: []*sfsyncv1.TicketOrder{{OrderId: o.ID, TaskId: task, SfOrderId: strconv.FormatInt(o.SFID, 10)}}}, "")
	cfg := testConfig()
	cfg.MaxErrors = 3
	r := e.start(cfg, "p1", nil)
	dead, err := e.js.Stream(e.ctx, broker.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the check on the dead-letter stream", func() bool {
		info, err := dead.Info(e.ctx)
		return err == nil && info.State.Msgs == 1
	})
	m, err := dead.GetMsg(e.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(events.HeaderBatch) != batch || !strings.HasPrefix(m.Header.Get(events.HeaderDeadSubject), events.TicketWaitPrefix) ||
		!strings.Contains(m.Header.Get(events.HeaderDeadReason), batch) || m.Header.Get(events.HeaderErrors) != "2" {
		t.Fatalf("dead letter %s %v", m.Subject, m.Header)
	}
	eventually(t, 5*time.Second, "nothing left on the poller's consumers", func() bool {
		for _, c := range []string{broker.TicketConsumer, broker.TicketWaitConsumer} {
			ci := e.consumerInfo(c)
			if ci.NumPending+uint64(ci.NumAckPending) != 0 {
				return false
			}
		}
		return true
	})
	if got := testutil.ToFloat64(r.p.Metrics().Dead); got != 1 {
		t.Fatalf("dead_letters_total = %v", got)
	}
}

// A batch pending through many re-checks costs one message on the wait
// subject: each re-check waits on the message it came on.
func TestPendingBatchPublishesNothingWhileItWaits(t *testing.T) {
	e := newEnv(t, func(c *sfsandbox.Config) { c.ScheduledFor, c.RunningFor = 100*time.Millisecond, time.Hour })
	o := e.newOrder(false)
	s := e.send([]order{o}, sendOpts{})
	cfg := testConfig()
	cfg.BackoffMin, cfg.BackoffMax = 100*time.Millisecond, 200*time.Millisecond
	e.start(cfg, "p1", nil)
	str, err := e.js.Stream(e.ctx, broker.TicketsStream)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		info, err := str.Info(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	eventually(t, 10*time.Second, "three reads", func() bool { return e.ticketReads(s.BatchID) >= 3 })
	first := msgs()
	eventually(t, 20*time.Second, "ten more reads", func() bool { return e.ticketReads(s.BatchID) >= 13 })
	if after := msgs(); after != first || first > 2 {
		t.Fatalf("the tickets stream went from %d to %d messages while one batch waited (want the check and one re-check)", first, after)
	}
	if tk, ok := e.task(s.Tasks[o.ID]); !ok || tk.FailedAt.Valid {
		t.Fatalf("task %+v", tk)
	}
}
