package sfsandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// maxRequestBody caps an operation's body.
const maxRequestBody = 10 << 20

func (s *Sandbox) handleAuth(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType string `json:"grant_type"`
		Username  string `json:"username"`
		Password  string `json:"password"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return
	}
	if req.GrantType != "password" {
		writeProblem(w, http.StatusBadRequest, fmt.Sprintf("grant_type %q is not supported; use \"password\"", req.GrantType))
		return
	}
	a, ok := s.accounts[req.Username]
	if !ok || req.Password == "" || a.Password.Reveal() != req.Password {
		writeProblem(w, http.StatusForbidden, "Invalid credentials")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_token": a.Token.Reveal(), "token_type": "Bearer"})
}

func (s *Sandbox) handlePing(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"timestamp": s.now().UTC().Format(atomLayout)})
}

type storeJSON struct {
	ID      int64           `json:"id"`
	Name    string          `json:"name"`
	Status  string          `json:"status"`
	Country string          `json:"country"`
	Links   map[string]href `json:"_links"`
}

func (s *Sandbox) handleMe(w http.ResponseWriter, r *http.Request) {
	tok, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	login := s.logins[tok]
	if login == "" {
		login = "sandbox"
	}
	var stores []storeJSON
	for _, id := range s.stores {
		if !s.owners[tok][id] {
			continue
		}
		base := fmt.Sprintf("/v1/store/%d", id)
		stores = append(stores, storeJSON{
			ID: id, Name: fmt.Sprintf("Sandbox store %d", id), Status: "active", Country: "FR",
			Links: map[string]href{"self": {base}, "order": {base + "/order"}, "ticket": {base + "/ticket"}},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":        s.accountID(tok),
		"login":     login,
		"_links":    map[string]href{"self": {"/v1/me"}},
		"_embedded": map[string]any{"store": stores},
	})
}

// accountID numbers tokens in configuration order.
func (s *Sandbox) accountID(tok string) int {
	for i, t := range s.cfg.Stores {
		if t.Token.Reveal() == tok {
			return i + 1
		}
	}
	return 0
}

func (s *Sandbox) handleOperate(w http.ResponseWriter, r *http.Request) {
	storeID, ok := s.authorizedStore(w, r)
	if !ok {
		return
	}
	op := r.PathValue("operation")
	if _, known := operationFields[op]; !known {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Unknown order operation %q", op))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if len(body) > maxRequestBody {
		writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxRequestBody))
		return
	}
	entries, err := parseOperation(op, body, s.cfg.MaxOrdersPerRequest)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}

	now := s.now()
	s.mu.Lock()
	b := &batch{id: s.nextID(), storeID: storeID, op: op}
	for _, e := range entries {
		final, msg, stuck := s.outcome(storeID, op, e)
		t := &ticket{
			id: s.nextID(), batchID: b.id, storeID: storeID, op: op, payload: e.raw, orderID: e.id,
			scheduledAt: now, startedAt: now.Add(s.cfg.ScheduledFor),
			final: final, message: msg,
		}
		t.finishedAt = t.startedAt.Add(s.cfg.RunningFor + stuck)
		b.tickets = append(b.tickets, t)
		s.tickets[t.id] = t
		s.byStore[storeID] = append(s.byStore[storeID], t)
		if len(s.ops) >= maxRecordedOperations {
			s.ops = s.ops[1:]
		}
		s.ops = append(s.ops, RecordedOperation{Time: now, StoreID: storeID, Operation: op, Entry: e.raw, BatchID: b.id, TicketID: t.id})
	}
	s.batches[b.id] = b
	s.mu.Unlock()

	writeJSON(w, http.StatusAccepted, map[string]any{
		"id": b.id,
		"_links": map[string]href{
			"ticket": {fmt.Sprintf("/v1/store/%d/ticket?batchId=%s", storeID, url.QueryEscape(b.id))},
		},
	})
}

// Ticket pages: the API's default and largest page sizes.
const (
	defaultTicketLimit = 20
	maxTicketLimit     = 200
)

func (s *Sandbox) handleTickets(w http.ResponseWriter, r *http.Request) {
	storeID, ok := s.authorizedStore(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	page, limit := 1, defaultTicketLimit
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("page %q must be a positive integer", v))
			return
		}
		page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTicketLimit {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("limit %q must be between 1 and %d", v, maxTicketLimit))
			return
		}
		limit = n
	}
	batchID := q.Get("batchId")

	now := s.now()
	s.mu.Lock()
	var all []*ticket
	if batchID != "" {
		b := s.batches[batchID]
		if b == nil || b.storeID != storeID {
			s.mu.Unlock()
			writeProblem(w, http.StatusNotFound, fmt.Sprintf("Batch %q not found", batchID))
			return
		}
		all = b.tickets
	} else {
		all = s.byStore[storeID]
	}
	processing := false
	for _, t := range all {
		if st, _, _ := t.stateAt(now); st == StateScheduled || st == StateRunning {
			processing = true
			break
		}
	}
	total := len(all)
	pages := max(1, (total+limit-1)/limit)
	views := []ticketJSON{}
	for i := (page - 1) * limit; i < min(page*limit, total); i++ {
		views = append(views, all[i].view(now))
	}
	s.mu.Unlock()

	link := func(p int) href {
		v := url.Values{}
		if batchID != "" {
			v.Set("batchId", batchID)
		}
		v.Set("page", strconv.Itoa(p))
		v.Set("limit", strconv.Itoa(limit))
		return href{fmt.Sprintf("/v1/store/%d/ticket?%s", storeID, v.Encode())}
	}
	links := map[string]href{"self": link(page), "first": link(1), "last": link(pages)}
	if page < pages {
		links["next"] = link(page + 1)
	}
	if page > 1 {
		links["prev"] = link(page - 1)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"total":     total,
		"limit":     limit,
		"pages":     pages,
		"page":      page,
		"count":     len(views),
		"_links":    links,
		"_embedded": map[string]any{"ticket": views},
		"meta":      map[string]any{"processing": processing},
	})
}

func (s *Sandbox) handleTicket(w http.ResponseWriter, r *http.Request) {
	storeID, ok := s.authorizedStore(w, r)
	if !ok {
		return
	}
	id := r.PathValue("ticketId")
	now := s.now()
	s.mu.Lock()
	t := s.tickets[id]
	var v ticketJSON
	if t != nil && t.storeID == storeID {
		v = t.view(now)
	}
	s.mu.Unlock()
	if t == nil || t.storeID != storeID {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Ticket %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Sandbox) handleOperations(w http.ResponseWriter, _ *http.Request) {
	ops := s.Operations()
	if ops == nil {
		ops = []RecordedOperation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": ops})
}

func (s *Sandbox) handleRequests(w http.ResponseWriter, _ *http.Request) {
	reqs := s.Requests()
	if reqs == nil {
		reqs = []RecordedRequest{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": reqs})
}

func (s *Sandbox) handleCounts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Counts())
}

func (s *Sandbox) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	s.log.Info("reset")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sandbox) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

func (s *Sandbox) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	// Read and replace under one lock, so that two PUTs do not lose one
	// another's fields.
	s.mu.Lock()
	f := s.faults
	err = json.Unmarshal(body, &f)
	if err == nil {
		err = f.Validate()
	}
	if err == nil {
		if f.RateLimit != s.faults.RateLimit {
			s.windows = map[string]*window{}
		}
		s.faults = f
	}
	s.mu.Unlock()
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "faults: "+err.Error())
		return
	}
	s.log.Info("faults changed", "faults", f)
	writeJSON(w, http.StatusOK, f)
}

func (s *Sandbox) handleFailNext(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Statuses []int `json:"statuses"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return
	}
	for _, st := range req.Statuses {
		if st < 400 || st > 599 {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("status %d is not between 400 and 599", st))
			return
		}
	}
	s.FailNext(req.Statuses...)
	w.WriteHeader(http.StatusNoContent)
}
