package shoppingfeed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The decoders below read what the API answers. They are lenient where the
// API is loosely specified (ids as strings or numbers, several date layouts,
// null timestamps) and strict where a wrong guess would mislead the caller
// (a batch without id, a ticket without id). They never panic: see the fuzz
// targets.

// flexString reads a JSON string or number (ids are both in the wild); null
// reads as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string or a number, got %.20s", b)
		}
		*f = flexString(n.String())
	}
	return nil
}

// flexTime reads the API's ISO-8601 timestamps: RFC 3339 with or without a
// fraction ("2024-05-01T10:00:00+00:00", PHP's DATE_ATOM), the offset
// without colon ("+0000", PHP's DATE_ISO8601), or "2006-01-02 15:04:05"
// taken as UTC. null and "" read as the zero time.
type flexTime time.Time

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05Z0700",
	"2006-01-02 15:04:05",
}

func (f *flexTime) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: want a string, got %.20s", b)
	}
	if s == nil || *s == "" {
		*f = flexTime{}
		return nil
	}
	t, err := parseTime(*s)
	if err != nil {
		return err
	}
	*f = flexTime(t)
	return nil
}

func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not ISO-8601", truncate(s, 40))
}

type link struct {
	Href string `json:"href"`
}

type wireBatch struct {
	ID    flexString `json:"id"`
	Links struct {
		Ticket link `json:"ticket"`
	} `json:"_links"`
}

// decodeBatch reads the 202 answer of an order operation.
func decodeBatch(body []byte) (Batch, error) {
	var w wireBatch
	if err := json.Unmarshal(body, &w); err != nil {
		return Batch{}, fmt.Errorf("%w: batch: %v", ErrMalformedResponse, err)
	}
	if w.ID == "" {
		return Batch{}, fmt.Errorf("%w: batch: no id", ErrMalformedResponse)
	}
	return Batch{ID: string(w.ID), TicketLink: w.Links.Ticket.Href}, nil
}

type wireTicket struct {
	ID          flexString      `json:"id"`
	BatchID     flexString      `json:"batchId"`
	State       string          `json:"state"`
	Payload     json.RawMessage `json:"payload"`
	ScheduledAt flexTime        `json:"scheduledAt"`
	StartedAt   flexTime        `json:"startedAt"`
	FinishedAt  flexTime        `json:"finishedAt"`
	Result      *struct {
		Message json.RawMessage `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"result"`
}

type wirePayload struct {
	ID          flexString `json:"id"`
	Reference   flexString `json:"reference"`
	ChannelName flexString `json:"channelName"`
}

func (w wireTicket) ticket() (Ticket, error) {
	if w.ID == "" {
		return Ticket{}, errors.New("ticket without id")
	}
	t := Ticket{
		ID:          string(w.ID),
		BatchID:     string(w.BatchID),
		State:       TicketState(w.State),
		ScheduledAt: time.Time(w.ScheduledAt),
		StartedAt:   time.Time(w.StartedAt),
		FinishedAt:  time.Time(w.FinishedAt),
	}
	if len(w.Payload) > 0 && !bytes.Equal(w.Payload, []byte("null")) {
		t.Payload.Raw = append(json.RawMessage(nil), w.Payload...)
		// A payload that is not an order entry is kept raw: the state is
		// what the caller needs most.
		var p wirePayload
		if json.Unmarshal(w.Payload, &p) == nil {
			if id, err := strconv.ParseInt(string(p.ID), 10, 64); err == nil && id > 0 {
				t.Payload.ID = id
			}
			t.Payload.Reference = string(p.Reference)
			t.Payload.ChannelName = string(p.ChannelName)
		}
	}
	if w.Result != nil {
		t.Message = messageText(w.Result.Message)
		if len(w.Result.Data) > 0 && !bytes.Equal(w.Result.Data, []byte("null")) {
			t.ResultData = append(json.RawMessage(nil), w.Result.Data...)
		}
	}
	return t, nil
}

// messageText returns a JSON string's value, or any other JSON value as its
// text (a marketplace may send a list of messages).
func messageText(raw json.RawMessage) string {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// decodeTicket reads one ticket resource.
func decodeTicket(body []byte) (Ticket, error) {
	var w wireTicket
	if err := json.Unmarshal(body, &w); err != nil {
		return Ticket{}, fmt.Errorf("%w: ticket: %v", ErrMalformedResponse, err)
	}
	t, err := w.ticket()
	if err != nil {
		return Ticket{}, fmt.Errorf("%w: %v", ErrMalformedResponse, err)
	}
	return t, nil
}

// ticketPage is one page of a ticket collection.
type ticketPage struct {
	Tickets    []Ticket
	Processing bool
	Page       int
	Pages      int
	Total      int
}

type wireTicketPage struct {
	Total    int `json:"total"`
	Limit    int `json:"limit"`
	Pages    int `json:"pages"`
	Page     int `json:"page"`
	Count    int `json:"count"`
	Embedded struct {
		Ticket []wireTicket `json:"ticket"`
	} `json:"_embedded"`
	Meta struct {
		Processing bool `json:"processing"`
	} `json:"meta"`
}

// decodeTicketPage reads one page of GET /v1/store/{id}/ticket.
func decodeTicketPage(body []byte) (ticketPage, error) {
	var w wireTicketPage
	if err := json.Unmarshal(body, &w); err != nil {
		return ticketPage{}, fmt.Errorf("%w: ticket page: %v", ErrMalformedResponse, err)
	}
	p := ticketPage{Processing: w.Meta.Processing, Page: w.Page, Pages: w.Pages, Total: w.Total}
	for i, wt := range w.Embedded.Ticket {
		t, err := wt.ticket()
		if err != nil {
			return ticketPage{}, fmt.Errorf("%w: ticket page: _embedded.ticket[%d]: %v", ErrMalformedResponse, i, err)
		}
		p.Tickets = append(p.Tickets, t)
	}
	return p, nil
}

type wireMe struct {
	ID       flexString `json:"id"`
	Login    string     `json:"login"`
	Embedded struct {
		Store []struct {
			ID      flexString `json:"id"`
			Name    string     `json:"name"`
			Status  string     `json:"status"`
			Country string     `json:"country"`
		} `json:"store"`
	} `json:"_embedded"`
}

// decodeMe reads GET /v1/me.
func decodeMe(body []byte) (Me, error) {
	var w wireMe
	if err := json.Unmarshal(body, &w); err != nil {
		return Me{}, fmt.Errorf("%w: me: %v", ErrMalformedResponse, err)
	}
	me := Me{ID: string(w.ID), Login: w.Login, Stores: []Store{}}
	for i, s := range w.Embedded.Store {
		if s.ID == "" {
			return Me{}, fmt.Errorf("%w: me: _embedded.store[%d] without id", ErrMalformedResponse, i)
		}
		me.Stores = append(me.Stores, Store{ID: string(s.ID), Name: s.Name, Status: StoreStatus(s.Status), Country: s.Country})
	}
	return me, nil
}

// decodeToken reads the answer of POST /v1/auth.
func decodeToken(body []byte) (string, error) {
	var w struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return "", fmt.Errorf("%w: auth: %v", ErrMalformedResponse, err)
	}
	if w.AccessToken == "" {
		return "", fmt.Errorf("%w: auth: no access_token", ErrMalformedResponse)
	}
	return w.AccessToken, nil
}

// problem is the part of an error answer the caller sees.
type problem struct {
	Type, Title, Detail string
}

// decodeProblem reads an error answer: application/problem+json (or any
// JSON with the same fields), else the start of the body as text.
func decodeProblem(contentType string, body []byte) problem {
	if strings.Contains(strings.ToLower(contentType), "json") {
		var w struct {
			Type   json.RawMessage `json:"type"`
			Title  json.RawMessage `json:"title"`
			Detail json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(body, &w) == nil {
			p := problem{
				Type:   truncate(oneLine(messageText(w.Type)), 200),
				Title:  truncate(oneLine(messageText(w.Title)), 200),
				Detail: truncate(oneLine(messageText(w.Detail)), 500),
			}
			if p != (problem{}) {
				return p
			}
		}
	}
	return problem{Detail: truncate(oneLine(string(body)), 200)}
}

// oneLine makes text safe for one log or error line: valid UTF-8, no
// control characters, runs of spaces collapsed.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// maxHeaderWait caps what a server may ask for, so a garbage header cannot
// overflow a Duration.
const maxHeaderWait = 24 * time.Hour

// parseWait reads the wait a 429 or 5xx asks for: X-RateLimit-Wait (seconds,
// may be fractional) first, then Retry-After (seconds or an HTTP date).
func parseWait(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("X-RateLimit-Wait")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(secs) && secs >= 0 {
			return clampWait(secs), true
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(secs) && secs >= 0 {
			return clampWait(secs), true
		}
		if t, err := http.ParseTime(v); err == nil {
			d := t.Sub(now)
			if d < 0 {
				d = 0
			}
			return min(d, maxHeaderWait), true
		}
	}
	return 0, false
}

func clampWait(secs float64) time.Duration {
	if secs >= maxHeaderWait.Seconds() {
		return maxHeaderWait
	}
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}
