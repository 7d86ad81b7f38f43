package sfsandbox

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Ticket states, spelled as the API does.
const (
	StateScheduled = "scheduled"
	StateRunning   = "running"
	StateSucceed   = "succeed"
	StateFailed    = "failed"
	StateCanceled  = "canceled"
)

// atomLayout is how the API writes dates (PHP's DATE_ATOM: no fraction,
// "+00:00" rather than "Z").
const atomLayout = "2006-01-02T15:04:05-07:00"

type batch struct {
	id      string
	storeID int64
	op      string
	tickets []*ticket
}

type ticket struct {
	id, batchID string
	storeID     int64
	op          string
	payload     json.RawMessage
	// orderID is the entry's Shopping Feed order id (0: sent by reference).
	orderID int64
	// The schedule, fixed at creation: the state shown is read from it.
	scheduledAt, startedAt, finishedAt time.Time
	final                              string
	message                            string
}

// stateAt is the ticket's state at now, and whether it has started and
// finished.
func (t *ticket) stateAt(now time.Time) (state string, started, finished bool) {
	switch {
	case now.Before(t.startedAt):
		return StateScheduled, false, false
	case now.Before(t.finishedAt):
		return StateRunning, true, false
	default:
		return t.final, true, true
	}
}

func (t *ticket) messageAt(now time.Time) string {
	if _, _, done := t.stateAt(now); done {
		return t.message
	}
	return ""
}

type href struct {
	Href string `json:"href"`
}

type ticketResult struct {
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

type ticketJSON struct {
	ID          string          `json:"id"`
	BatchID     string          `json:"batchId"`
	State       string          `json:"state"`
	Payload     json.RawMessage `json:"payload"`
	ScheduledAt string          `json:"scheduledAt"`
	StartedAt   *string         `json:"startedAt"`
	FinishedAt  *string         `json:"finishedAt"`
	Result      *ticketResult   `json:"result"`
	Links       map[string]href `json:"_links"`
}

func (t *ticket) view(now time.Time) ticketJSON {
	state, started, finished := t.stateAt(now)
	v := ticketJSON{
		ID: t.id, BatchID: t.batchID, State: state, Payload: t.payload,
		ScheduledAt: t.scheduledAt.UTC().Format(atomLayout),
		Links: map[string]href{
			"self":  {fmt.Sprintf("/v1/store/%d/ticket/%s", t.storeID, t.id)},
			"batch": {fmt.Sprintf("/v1/store/%d/ticket?batchId=%s", t.storeID, t.batchID)},
		},
	}
	if started {
		s := t.startedAt.UTC().Format(atomLayout)
		v.StartedAt = &s
	}
	if finished {
		f := t.finishedAt.UTC().Format(atomLayout)
		v.FinishedAt = &f
		if t.message != "" {
			v.Result = &ticketResult{Message: t.message, Data: json.RawMessage("null")}
		}
	}
	return v
}

// outcome decides a new ticket's final state, message and extra running
// time, by the rules of the package documentation. Call with s.mu held.
func (s *Sandbox) outcome(storeID int64, op string, e entry) (state, message string, stuck time.Duration) {
	f := s.faults
	channel := e.channelName
	if book := s.known[storeID]; book != nil {
		var o Order
		var ok bool
		if e.id != 0 {
			o, ok = book.byID[e.id]
		} else {
			o, ok = book.byRef[[2]string{e.reference, strings.ToLower(e.channelName)}]
		}
		if !ok {
			if e.id != 0 {
				return StateFailed, fmt.Sprintf("Order %d not found in store %d", e.id, storeID), 0
			}
			return StateFailed, fmt.Sprintf("Order %q on channel %q not found in store %d", e.reference, e.channelName, storeID), 0
		}
		if o.ChannelName != "" {
			channel = o.ChannelName
		}
	}
	if op == "ship" && !s.cfg.AllowShipWithoutTracking && strings.TrimSpace(e.trackingNumber) == "" {
		return StateFailed, "A tracking number is required to ship this order", 0
	}
	if op == "refund" && s.refundOff[strings.ToLower(channel)] {
		return StateFailed, fmt.Sprintf("Refund is not supported by channel %s", channel), 0
	}
	if s.chance(f.StuckRate) {
		stuck = f.StuckFor
	}
	if s.chance(f.TicketFailureRate) {
		return StateFailed, "The marketplace refused the operation (sandbox failure rate)", stuck
	}
	if s.chance(f.TicketCancelRate) {
		return StateCanceled, "The operation was canceled (sandbox cancel rate)", stuck
	}
	return StateSucceed, "", stuck
}
