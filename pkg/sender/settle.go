package sender

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
)

// The handler contract. Every step that decides what becomes of a message
// (handle, prepare, hold, drop, fail, and the request's outcome) returns an
// outcome; settle is the one place that carries it out with Ack, NAK or
// Term, and logs a settle that fails. A message is settled only after the
// database commit its outcome depends on.

type outcomeKind int

const (
	// taken: the update is on its way to the API; its request's outcome
	// settles the message.
	taken outcomeKind = iota
	// ack: done (sent and recorded, dropped, failed, or nothing to do).
	ack
	// nak: redeliver the message after a delay.
	nak
	// retry: an error (the database, the broker): the event is published
	// again on the wait subject, due after a backoff that grows with its
	// failure count (events.HeaderErrors), and the message acked; after
	// Config.MaxErrors failures it is given up to the dead-letter stream
	// instead. Holds never count: only errors are failures.
	retry
	// term: a message no retry can make usable: terminated, and a copy
	// kept on the dead-letter stream.
	term
	// handed: another sender, the shop's leader, took the message and
	// settles it (lead.go).
	handed
	// wait: the update waits. A message of the wait lane waits as it is:
	// NAKed with the delay, so waiting publishes nothing, however many
	// hold periods it lasts. A message of the due lane moves once to the
	// wait lane: it is published again on the wait subject, due after the
	// delay in the database's clock, and acked (NAKed with the delay if
	// that publish fails: nothing is dropped).
	wait
)

var outcomeNames = [...]string{taken: "taken", ack: "ack", nak: "nak", retry: "retry", term: "term", handed: "handed", wait: "wait"}

func (k outcomeKind) String() string { return outcomeNames[k] }

// outcome is what becomes of one message.
type outcome struct {
	kind  outcomeKind
	delay time.Duration
	// reason labels a wait (sfsync_sender_deferred_total) or a retry
	// (sfsync_sender_errors_total).
	reason string
	err    error
	// task is the task a wait is for: its id and the database's clock.
	task prestashop.SyncTask
}

func acked() outcome                            { return outcome{kind: ack} }
func takenByBatch() outcome                     { return outcome{kind: taken} }
func handedOver() outcome                       { return outcome{kind: handed} }
func nakAfter(d time.Duration) outcome          { return outcome{kind: nak, delay: d} }
func terminated(err error) outcome              { return outcome{kind: term, err: err} }
func retryLater(kind string, err error) outcome { return outcome{kind: retry, reason: kind, err: err} }

// waitFor puts t's update back to wait d (in the database's clock).
func waitFor(t prestashop.SyncTask, d time.Duration, reason string) outcome {
	return outcome{kind: wait, delay: d, reason: reason, task: t}
}

// settle carries out o on m, whose event is ev.
func (s *Sender) settle(ctx context.Context, m jetstream.Msg, ev events.Change, o outcome) {
	var err error
	switch o.kind {
	case taken, handed:
		return
	case ack:
		err = m.Ack()
	case nak:
		err = m.NakWithDelay(o.delay)
	case retry:
		s.m.errors.WithLabelValues(o.reason).Inc()
		n := events.Errors(m.Headers()) + 1
		if n >= s.cfg.maxErrors() {
			s.log.Error("order-status message given up after repeated failures: kept on the dead-letter stream (sfsync retry --dead)",
				"subject", m.Subject(), "order_id", ev.OrderID, "failures", n, "kind", o.reason, "err", o.err)
			if derr := s.deadLetter(ctx, m, o.err); derr != nil {
				s.log.Warn("publish dead letter, retrying", "subject", m.Subject(), "err", derr)
				err = m.NakWithDelay(30 * time.Second) // nothing is dropped
			} else {
				err = m.Ack()
			}
			break
		}
		d := min(time.Duration(1<<min(n, 8))*100*time.Millisecond, 30*time.Second)
		s.log.Warn("order-status message retried", "subject", m.Subject(), "kind", o.reason, "err", o.err, "failures", n, "retry_in", d)
		// NotBefore is in the database's clock, as the detector's are.
		offset, oerr := s.clockOffset(ctx)
		if oerr != nil {
			err = m.NakWithDelay(d) // the database is unreachable: wait on this message
			break
		}
		next := ev.Deferred(ev.TaskID, time.Now().UTC().Add(offset+d)).Msg("retry:"+o.reason, "")
		events.SetErrors(next, n)
		if perr := s.publish(ctx, next); perr != nil {
			err = m.NakWithDelay(d) // nothing is dropped; counted again on its next failure
		} else {
			err = m.Ack()
		}
	case term:
		s.m.errors.WithLabelValues("bad_message").Inc()
		s.log.Error("bad order-status message terminated: kept on the dead-letter stream", "subject", m.Subject(), "err", o.err, "body", truncate(string(m.Data()), 200))
		if derr := s.deadLetter(ctx, m, o.err); derr != nil {
			s.log.Warn("keep a bad message on the dead-letter stream", "subject", m.Subject(), "err", derr)
		}
		err = m.Term()
	case wait:
		s.m.deferred.WithLabelValues(o.reason).Inc()
		if onWaitLane(m) {
			err = m.NakWithDelay(o.delay)
			break
		}
		next := ev.Deferred(o.task.ID, o.task.Now.Add(o.delay))
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, perr := s.js.PublishMsg(pctx, next.Msg("wait:"+o.reason, ""))
		cancel()
		if perr != nil {
			s.log.Warn("put update back to wait", "order_id", ev.OrderID, "err", perr)
			err = m.NakWithDelay(o.delay)
		} else {
			err = m.Ack()
		}
	}
	if err != nil {
		// The message comes back after AckWait; its task row decides again.
		s.log.Warn("settle order-status message", "subject", m.Subject(), "outcome", o.kind.String(), "err", err)
	}
}

// publish publishes msg within 5 s, even while shutting down.
func (s *Sender) publish(ctx context.Context, msg *nats.Msg) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := s.js.PublishMsg(pctx, msg)
	return err
}

// deadLetter publishes a copy of m, given up, to the dead-letter stream;
// the caller settles m.
func (s *Sender) deadLetter(ctx context.Context, m jetstream.Msg, cause error) error {
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	if err := s.publish(ctx, events.DeadLetter(m.Subject(), m.Data(), m.Headers(), "sender "+s.instance, reason)); err != nil {
		return err
	}
	s.m.dead.Inc()
	return nil
}

// onWaitLane reports whether m came on the wait lane's subjects.
func onWaitLane(m jetstream.Msg) bool {
	return strings.HasPrefix(m.Subject(), events.OrderWaitPrefix+".")
}

// conclude forgets an item this replica held and settles its message.
func (s *Sender) conclude(ctx context.Context, it *item, o outcome) {
	s.release(it)
	s.settle(ctx, it.msg, it.ev, o)
}
