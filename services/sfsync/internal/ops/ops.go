// Package ops holds the operator commands: status, retry, replay, check.
// They use the same configuration as `sfsync run`.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/targets"
)

// Exit codes scripts can use.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitNothing  = 3 // retry: nothing matched
	ExitBlocking = 4 // check: something blocks sync
)

// Env is what the commands run against.
type Env struct {
	Store *prestashop.Store
	// JS is nil when the broker cannot be reached (status still reports
	// what the database knows).
	JS      jetstream.JetStream
	NC      *nats.Conn
	NATSErr error
	Out     io.Writer
	JSON    bool
}

// Connect opens the database and, within 3 s, the broker.
func Connect(ctx context.Context, db prestashop.Config, natsURL string, natsOpts []nats.Option) (*Env, func(), error) {
	sqlDB, err := prestashop.Open(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	e := &Env{Store: prestashop.New(sqlDB, db.Prefix)}
	opts := append([]nats.Option{nats.Timeout(3 * time.Second), nats.Name("sfsync-cli")}, natsOpts...)
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		e.NATSErr = fmt.Errorf("nats at %s: %w", config.RedactURL(natsURL), config.RedactErr(err, natsURL))
	} else {
		e.NC = nc
		e.JS, _ = jetstream.New(nc)
	}
	return e, func() {
		if e.NC != nil {
			e.NC.Close()
		}
		sqlDB.Close()
	}, nil
}

func (e *Env) table() *tabwriter.Writer { return tabwriter.NewWriter(e.Out, 2, 4, 2, ' ', 0) }

func (e *Env) printJSON(v any) error {
	enc := json.NewEncoder(e.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Status is what `sfsync status` reports.
type Status struct {
	Tasks          []TaskCount     `json:"tasks"`
	OldestDue      *time.Time      `json:"oldest_due,omitempty"`
	TicketsPending int             `json:"tickets_pending"`
	BatchesPending int             `json:"batches_pending"`
	Failures       []Failure       `json:"recent_failures"`
	Detector       *DetectorStatus `json:"detector,omitempty"`
	// SkippedRows are the order_history rows the detector could not use.
	SkippedRows *prestashop.BadHistory `json:"skipped_history_rows,omitempty"`
	Streams     []StreamStatus         `json:"streams,omitempty"`
	// DeadCount counts the messages the workers gave up on (SFSYNC_DEAD);
	// Dead lists the last DeadShown of them.
	DeadCount uint64       `json:"dead_letters"`
	Dead      []DeadLetter `json:"recent_dead_letters,omitempty"`
	Broker    string       `json:"broker_error,omitempty"`
}

// DeadLetter is a message given up on.
type DeadLetter struct {
	Subject string    `json:"subject"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// DeadShown is how many dead letters status lists.
const DeadShown = 10

// TaskCount counts tasks of one shop in one state.
type TaskCount struct {
	ShopID uint32 `json:"shop_id"`
	State  string `json:"state"`
	Count  int    `json:"count"`
}

// Failure is a failed task.
type Failure struct {
	OrderID   uint32    `json:"order_id"`
	Reference string    `json:"reference"`
	Operation string    `json:"operation"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
}

// DetectorStatus is the detector's position and leader.
type DetectorStatus struct {
	Position uint64 `json:"position"`
	LagRows  uint64 `json:"lag_rows"`
	Gaps     int    `json:"gaps"`
	Leader   string `json:"leader"`
}

// StreamStatus is a consumer's backlog.
type StreamStatus struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	Messages   uint64 `json:"stream_messages"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
}

func taskState(action string, failed bool) string {
	switch {
	case failed:
		return "failed"
	case action == prestashop.ActionSyncStatus:
		return "waiting to send"
	case action == prestashop.ActionPartialRefund:
		return "partial refund waiting to send"
	case action == prestashop.ActionCheckTicketStatus, action == prestashop.ActionCheckTicketPartialRefund:
		return "ticket pending"
	}
	return strings.ToLower(action)
}

// ReadStatus gathers the status.
func (e *Env) ReadStatus(ctx context.Context) (Status, error) {
	var st Status
	s := e.Store
	counts, err := s.TaskCounts(ctx)
	if err != nil {
		return st, err
	}
	for _, c := range counts {
		st.Tasks = append(st.Tasks, TaskCount{ShopID: c.ShopID, State: taskState(c.Action, c.Failed), Count: c.Count})
	}
	st.OldestDue, _ = s.OldestDue(ctx)
	st.TicketsPending, st.BatchesPending, _ = s.PendingTickets(ctx)
	failures, err := s.RecentFailures(ctx, 10)
	if err != nil {
		return st, err
	}
	for _, f := range failures {
		st.Failures = append(st.Failures, Failure(f))
	}
	if bh, err := s.BadHistory(ctx); err == nil && bh.Total > 0 {
		st.SkippedRows = &bh
	}
	if e.JS == nil {
		st.Broker = fmt.Sprint(e.NATSErr)
		return st, nil
	}
	if ds, err := e.detectorStatus(ctx); err == nil {
		st.Detector = ds
	}
	for _, c := range []struct{ stream, consumer string }{
		{broker.OrdersStream, broker.SenderConsumer}, {broker.OrdersStream, broker.SenderWaitConsumer},
		{broker.TicketsStream, broker.TicketConsumer}, {broker.TicketsStream, broker.TicketWaitConsumer},
	} {
		ss := StreamStatus{Stream: c.stream, Consumer: c.consumer}
		if str, err := e.JS.Stream(ctx, c.stream); err == nil {
			if info, err := str.Info(ctx); err == nil {
				ss.Messages = info.State.Msgs
			}
		}
		if cons, err := e.JS.Consumer(ctx, c.stream, c.consumer); err == nil {
			if info, err := cons.Info(ctx); err == nil {
				ss.Pending, ss.AckPending = info.NumPending, info.NumAckPending
			}
		}
		st.Streams = append(st.Streams, ss)
	}
	st.DeadCount, st.Dead = e.deadLetters(ctx)
	return st, nil
}

// deadLetters counts the dead letters and reads the last DeadShown.
func (e *Env) deadLetters(ctx context.Context) (uint64, []DeadLetter) {
	str, err := e.JS.Stream(ctx, broker.DeadStream)
	if err != nil {
		return 0, nil
	}
	info, err := str.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return 0, nil
	}
	var out []DeadLetter
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < DeadShown; seq-- {
		m, err := str.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		out = append(out, DeadLetter{Subject: m.Header.Get(events.HeaderDeadSubject), By: m.Header.Get(events.HeaderDeadBy),
			Reason: m.Header.Get(events.HeaderDeadReason), At: m.Time})
	}
	return info.State.Msgs, out
}

// RetryDead sends every dead letter again to the subject it came from,
// its failure count started anew, and removes it from the dead-letter
// stream once the broker has the new message; it returns how many went.
func (e *Env) RetryDead(ctx context.Context) (int, error) {
	if e.JS == nil {
		return 0, e.NATSErr
	}
	str, err := e.JS.Stream(ctx, broker.DeadStream)
	if err != nil {
		return 0, fmt.Errorf("open the dead-letter stream: %w", err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the dead-letter stream: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, ErrNothing
	}
	n := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		msg, ok := events.Revived(m.Data, m.Header)
		if !ok {
			continue // not a dead letter sfsync wrote: left for a person
		}
		if _, err := e.JS.PublishMsg(ctx, msg); err != nil {
			return n, fmt.Errorf("send dead letter %d again to %s: %w", seq, msg.Subject, err)
		}
		if err := str.DeleteMsg(ctx, seq); err != nil {
			return n, fmt.Errorf("remove dead letter %d (it was sent again): %w", seq, err)
		}
		n++
	}
	if n == 0 {
		return 0, ErrNothing
	}
	return n, nil
}

func (e *Env) key(ctx context.Context) (string, error) {
	db, err := e.Store.DatabaseName(ctx)
	if err != nil {
		return "", err
	}
	return detector.Key(db, e.Store.Prefix()), nil
}

func (e *Env) detectorStatus(ctx context.Context) (*DetectorStatus, error) {
	key, err := e.key(ctx)
	if err != nil {
		return nil, err
	}
	ds := &DetectorStatus{Leader: "(none)"}
	if kv, err := e.JS.KeyValue(ctx, broker.CheckpointBucket); err == nil {
		if cp, ok, err := detector.ReadCheckpoint(ctx, kv, key); err == nil && ok {
			ds.Position, ds.Gaps = cp.Position, len(cp.Gaps)
		}
	}
	if last, err := e.Store.MaxHistoryID(ctx); err == nil && last > ds.Position {
		ds.LagRows = last - ds.Position
	}
	if kv, err := e.JS.KeyValue(ctx, broker.LeaseBucket); err == nil {
		if entry, err := kv.Get(ctx, key); err == nil {
			ds.Leader = string(entry.Value())
		}
	}
	return ds, nil
}

// PrintStatus runs `sfsync status`.
func (e *Env) PrintStatus(ctx context.Context) error {
	st, err := e.ReadStatus(ctx)
	if err != nil {
		return err
	}
	if e.JSON {
		return e.printJSON(st)
	}
	w := e.table()
	fmt.Fprintln(w, "SHOP\tTASKS\tCOUNT")
	for _, t := range st.Tasks {
		fmt.Fprintf(w, "%d\t%s\t%d\n", t.ShopID, t.State, t.Count)
	}
	if len(st.Tasks) == 0 {
		fmt.Fprintln(w, "-\t(no task)\t0")
	}
	w.Flush()
	fmt.Fprintln(e.Out)
	if st.OldestDue != nil {
		fmt.Fprintf(e.Out, "oldest due update: %s\n", st.OldestDue.Format(time.DateTime))
	} else {
		fmt.Fprintln(e.Out, "oldest due update: none")
	}
	fmt.Fprintf(e.Out, "tickets pending:   %d orders in %d batches\n", st.TicketsPending, st.BatchesPending)
	if st.Detector != nil {
		fmt.Fprintf(e.Out, "detector:          position %d, lag %d rows, %d gaps, leader %s\n", st.Detector.Position, st.Detector.LagRows, st.Detector.Gaps, oneLine(st.Detector.Leader, 80))
	}
	if st.Broker != "" {
		fmt.Fprintf(e.Out, "broker:            unreachable: %s\n", oneLine(st.Broker, 200))
	}
	if len(st.Streams) > 0 {
		fmt.Fprintln(e.Out)
		w = e.table()
		fmt.Fprintln(w, "STREAM\tCONSUMER\tMESSAGES\tPENDING\tACK PENDING")
		for _, s := range st.Streams {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", s.Stream, s.Consumer, s.Messages, s.Pending, s.AckPending)
		}
		w.Flush()
	}
	if st.SkippedRows != nil {
		fmt.Fprintln(e.Out)
		fmt.Fprintf(e.Out, "order_history rows skipped by the detector: %d (the last %d below)\n", st.SkippedRows.Total, len(st.SkippedRows.Rows))
		w = e.table()
		fmt.Fprintln(w, "HISTORY ID\tSEEN AT\tWHY")
		for _, r := range st.SkippedRows.Rows {
			fmt.Fprintf(w, "%d\t%s\t%s\n", r.ID, r.At.Format(time.DateTime), oneLine(r.Reason, 120))
		}
		w.Flush()
	}
	if st.DeadCount > 0 {
		fmt.Fprintln(e.Out)
		fmt.Fprintf(e.Out, "dead letters (given up after repeated failures; sfsync retry --dead): %d\n", st.DeadCount)
		w = e.table()
		fmt.Fprintln(w, "AT\tSUBJECT\tBY\tWHY")
		for _, d := range st.Dead {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d.At.Format(time.DateTime), oneLine(d.Subject, 80), oneLine(d.By, 40), oneLine(d.Reason, 120))
		}
		w.Flush()
	}
	if len(st.Failures) > 0 {
		fmt.Fprintln(e.Out)
		w = e.table()
		fmt.Fprintln(w, "FAILED ORDER\tREFERENCE\tOPERATION\tAT\tERROR")
		for _, f := range st.Failures {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", f.OrderID, oneLine(f.Reference, 40), oneLine(f.Operation, 20), f.At.Format(time.DateTime), oneLine(f.Error, 120))
		}
		w.Flush()
	}
	return nil
}

// oneLine makes a text from the database or the broker safe to print on
// a terminal, on one line of at most n characters: terminal escape
// sequences (CSI, OSC, …) are removed, any other control character and
// invalid byte becomes a space or U+FFFD, and a long text is cut on a
// character. A shop's data (a reference, an error Shopping Feed echoed)
// can thus neither move the cursor nor rewrite what status shows.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(stripControls(s)), " ")
	if utf8.RuneCountInString(s) > n {
		r := []rune(s)
		return string(r[:n]) + "…"
	}
	return s
}

// stripControls removes escape sequences and turns other control
// characters (C0, DEL, C1) into spaces.
func stripControls(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == 0x1b || r == 0x9b || r == 0x9d || r == 0x90: // ESC, CSI, OSC, DCS
			i = escapeEnd(rs, i)
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escapeEnd is the index of the last rune of the escape sequence that
// starts at rs[i].
func escapeEnd(rs []rune, i int) int {
	kind := rs[i]
	if kind == 0x1b {
		if i+1 >= len(rs) {
			return i
		}
		switch rs[i+1] {
		case '[':
			kind, i = 0x9b, i+1
		case ']', 'P', '_', '^', 'X':
			kind, i = 0x9d, i+1
		default:
			return i + 1 // a two-character sequence (ESC c, ESC 7, …)
		}
	}
	for j := i + 1; j < len(rs); j++ {
		r := rs[j]
		if kind == 0x9b && r >= 0x40 && r <= 0x7e {
			return j // CSI ends with its final byte
		}
		if kind != 0x9b && (r == 0x07 || r == 0x9c) {
			return j // OSC, DCS … end with BEL or ST
		}
		if kind != 0x9b && r == 0x1b && j+1 < len(rs) && rs[j+1] == '\\' {
			return j + 1 // ESC \ (ST)
		}
	}
	return len(rs) - 1
}

// ErrNothing is returned when a command found nothing to act on.
var ErrNothing = errors.New("nothing matched")

// Retry re-queues failed tasks (of one order, or all) as the pending tasks
// they were (SYNC_STATUS, PARTIAL_REFUND, SFSYNC_WEBHOOK) due now and wakes
// the sender; it returns the orders re-queued.
func (e *Env) Retry(ctx context.Context, orderID uint32) ([]uint32, error) {
	s := e.Store
	woken, err := s.RequeueFailed(ctx, orderID)
	var orders []uint32
	for _, w := range woken {
		if !slices.Contains(orders, w.OrderID) {
			orders = append(orders, w.OrderID)
		}
	}
	if err != nil {
		return orders, err
	}
	if len(woken) == 0 {
		return nil, ErrNothing
	}
	if e.JS != nil {
		db, _ := s.DatabaseName(ctx)
		for _, w := range woken {
			ev := events.Change{ShopDB: db, ShopID: w.ShopID, OrderID: w.OrderID, Source: events.SourceRetry}
			switch w.Action {
			case prestashop.ActionWebhook:
				ev.Target = targets.Webhook
			case prestashop.ActionPartialRefund:
				ev.Action = w.Action
			}
			if _, err := e.JS.PublishMsg(ctx, ev.Msg("retry", "")); err != nil {
				return orders, fmt.Errorf("wake the sender for order %d (the sweeper will): %w", w.OrderID, err)
			}
		}
	}
	for _, o := range orders {
		_ = s.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:retry", Msg: "failed update re-queued by sfsync retry", Level: prestashop.LevelInfo, ObjectName: "Order", ObjectID: o, Session: "cli"})
	}
	return orders, nil
}

// Replay moves the detector's checkpoint (and its database mirror) to a
// start position; the leader resumes there within about a second.
func (e *Env) Replay(ctx context.Context, from string) (uint64, error) {
	start, err := detector.ParseStart(from)
	if err != nil {
		return 0, err
	}
	if e.JS == nil {
		return 0, e.NATSErr
	}
	pos, err := detector.StartPosition(ctx, e.Store, start)
	if err != nil {
		return 0, err
	}
	key, err := e.key(ctx)
	if err != nil {
		return 0, err
	}
	kv, err := e.JS.KeyValue(ctx, broker.CheckpointBucket)
	if err != nil {
		return 0, fmt.Errorf("open checkpoint bucket: %w", err)
	}
	if err := detector.SetCheckpoint(ctx, kv, e.Store, key, detector.Checkpoint{Position: pos, By: "sfsync replay", At: time.Now().UTC(), Replay: true}); err != nil {
		return 0, err
	}
	return pos, nil
}
