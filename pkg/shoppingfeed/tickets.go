package shoppingfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// TicketState is a ticket's state, spelled as the API does.
type TicketState string

// Ticket states: scheduled and running are pending; the others are final.
const (
	TicketScheduled TicketState = "scheduled"
	TicketRunning   TicketState = "running"
	TicketSucceed   TicketState = "succeed"
	TicketFailed    TicketState = "failed"
	TicketCanceled  TicketState = "canceled"
)

// Resolved reports whether the state is final: succeed, failed or canceled.
func (s TicketState) Resolved() bool {
	return s == TicketSucceed || s == TicketFailed || s == TicketCanceled
}

// Pending reports whether the ticket may still change: scheduled, running,
// or a state this client does not know (keep polling rather than guess).
func (s TicketState) Pending() bool { return !s.Resolved() }

// Ticket is the outcome of one order entry of a batch.
type Ticket struct {
	ID      string
	BatchID string
	State   TicketState
	// Payload is the order entry as submitted.
	Payload TicketPayload
	// ScheduledAt, StartedAt and FinishedAt are zero until they happen.
	ScheduledAt, StartedAt, FinishedAt time.Time
	// Message is result.message: why a ticket failed, as the marketplace
	// said it.
	Message string
	// ResultData is result.data, raw.
	ResultData json.RawMessage
}

// TicketPayload is the submitted order entry a ticket reports on. Match a
// ticket to its order by ID first, then by Reference and ChannelName:
// whether Shopping Feed echoes the reference of an entry sent by id is not
// confirmed.
type TicketPayload struct {
	ID          int64
	Reference   string
	ChannelName string
	// Raw is the payload's JSON as the API returned it.
	Raw json.RawMessage
}

// Matches reports whether the payload designates ref (by id when both have
// one, else by reference and channel name).
func (p TicketPayload) Matches(ref OrderRef) bool {
	if ref.ID != 0 && p.ID != 0 {
		return ref.ID == p.ID
	}
	return ref.Reference != "" && p.Reference == ref.Reference && p.ChannelName == ref.ChannelName
}

// TicketList is every ticket of a batch. An order of the batch without a
// ticket (say, the list is empty right after the POST) is not known to be
// done: treat it as pending until the caller's own deadline.
type TicketList struct {
	Tickets []Ticket
	// Processing is the API's meta.processing (or any ticket pending): some
	// ticket of the batch is not final yet.
	Processing bool
}

// DefaultTicketPageSize is the page size BatchTickets asks for, the API's
// largest.
const DefaultTicketPageSize = 200

// maxTicketPages stops a paging loop on an answer that never ends.
const maxTicketPages = 1000

// BatchTickets reads every page of the batch's tickets. An unknown batch is
// an error matching ErrNotFound.
func (c *Client) BatchTickets(ctx context.Context, token config.Secret, storeID, batchID string) (TicketList, error) {
	if err := checkStore(storeID); err != nil {
		return TicketList{}, err
	}
	if batchID == "" {
		return TicketList{}, invalidf("empty batch id")
	}
	var list TicketList
	seen := map[string]bool{}
	for page := 1; ; page++ {
		if page > maxTicketPages {
			return TicketList{}, fmt.Errorf("%w: batch %s: more than %d pages of tickets", ErrMalformedResponse, batchID, maxTicketPages)
		}
		q := url.Values{}
		q.Set("batchId", batchID)
		q.Set("page", strconv.Itoa(page))
		q.Set("limit", strconv.Itoa(c.pageSize))
		res, err := c.do(ctx, call{
			op:     "tickets",
			method: http.MethodGet,
			path:   "/v1/store/" + url.PathEscape(storeID) + "/ticket",
			query:  q,
			token:  token,
		})
		if err != nil {
			return TicketList{}, err
		}
		p, err := decodeTicketPage(res.body)
		if err != nil {
			return TicketList{}, fmt.Errorf("shoppingfeed tickets: batch %s page %d: %w", batchID, page, err)
		}
		list.Processing = list.Processing || p.Processing
		for _, t := range p.Tickets {
			if seen[t.ID] {
				continue
			}
			seen[t.ID] = true
			list.Tickets = append(list.Tickets, t)
			list.Processing = list.Processing || t.State.Pending()
		}
		// Without "pages", a full page means there may be another.
		more := page < p.Pages
		if p.Pages == 0 {
			more = len(p.Tickets) >= c.pageSize
		}
		if len(p.Tickets) == 0 || !more {
			return list, nil
		}
	}
}

// Ticket reads one ticket. An unknown ticket is an error matching
// ErrNotFound.
func (c *Client) Ticket(ctx context.Context, token config.Secret, storeID, ticketID string) (Ticket, error) {
	if err := checkStore(storeID); err != nil {
		return Ticket{}, err
	}
	if ticketID == "" {
		return Ticket{}, invalidf("empty ticket id")
	}
	res, err := c.do(ctx, call{
		op:     "ticket",
		method: http.MethodGet,
		path:   "/v1/store/" + url.PathEscape(storeID) + "/ticket/" + url.PathEscape(ticketID),
		token:  token,
	})
	if err != nil {
		return Ticket{}, err
	}
	t, err := decodeTicket(res.body)
	if err != nil {
		return Ticket{}, fmt.Errorf("shoppingfeed ticket %s: %w", ticketID, err)
	}
	return t, nil
}
