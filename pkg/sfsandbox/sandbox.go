package sfsandbox

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// RecordedOperation is one order entry the sandbox accepted.
type RecordedOperation struct {
	Time      time.Time `json:"time"`
	StoreID   int64     `json:"storeId"`
	Operation string    `json:"operation"`
	// Entry is the order entry exactly as received.
	Entry    json.RawMessage `json:"order"`
	BatchID  string          `json:"batchId"`
	TicketID string          `json:"ticketId"`
	// TicketState and TicketMessage are the entry's ticket as it stands
	// when the record is read (scheduled, running, succeed, failed,
	// canceled), so a checker can tell which entries failed and why.
	TicketState   string `json:"ticketState,omitempty"`
	TicketMessage string `json:"ticketMessage,omitempty"`
}

// RecordedRequest is one /v1 request the sandbox answered.
type RecordedRequest struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	// Path includes the query.
	Path   string `json:"path"`
	Status int    `json:"status"`
}

// Record caps: the oldest records go first.
const (
	maxRecordedOperations = 100_000
	maxRecordedRequests   = 10_000
)

// Sandbox is the simulated API. It is safe for concurrent use.
type Sandbox struct {
	log  *slog.Logger
	cfg  Config
	seed uint64
	// now is the clock of tickets and rate limits (tests move it).
	now func() time.Time

	// Fixed by the configuration.
	owners    map[string]map[int64]bool // token → stores it owns
	stores    []int64                   // every store, in configuration order
	accounts  map[string]Account        // by username
	logins    map[string]string         // token → username
	refundOff map[string]bool           // lower-case channels

	mu       sync.Mutex
	faults   Faults
	failNext []int
	rng      *rand.Rand
	seq      uint32
	known    map[int64]*orderBook
	batches  map[string]*batch
	tickets  map[string]*ticket
	byStore  map[int64][]*ticket
	ops      []RecordedOperation
	reqs     []RecordedRequest
	counts   Counts
	windows  map[string]*window
}

// Counts are the /v1 requests answered since the start or the last reset,
// counted whole (the request records keep only the latest).
type Counts struct {
	Requests int `json:"requests"`
	// RateLimited are the 429s SANDBOX_RATE_LIMIT refused: a client that
	// keeps to the limit gets none.
	RateLimited int `json:"rateLimited"`
	// Throttled are the 429s injected as a fault (SANDBOX_THROTTLE_RATE,
	// fail-next), as another client on the token would cause.
	Throttled int `json:"throttled"`
	// Errors are the 5xx answers injected as a fault.
	Errors int `json:"errors"`
}

type orderBook struct {
	byID  map[int64]Order
	byRef map[[2]string]Order // {reference, lower-case channel}
}

// New returns a sandbox for cfg (call cfg.Validate first: New tolerates
// what it can). A nil log discards.
func New(cfg Config, log *slog.Logger) *Sandbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxOrdersPerRequest <= 0 {
		cfg.MaxOrdersPerRequest = 100
	}
	s := &Sandbox{
		log:       log,
		cfg:       cfg,
		now:       time.Now,
		seed:      cfg.Seed,
		owners:    map[string]map[int64]bool{},
		accounts:  map[string]Account{},
		logins:    map[string]string{},
		refundOff: map[string]bool{},
	}
	if s.seed == 0 {
		s.seed = uint64(time.Now().UnixNano())
	}
	for _, t := range cfg.Stores {
		tok := t.Token.Reveal()
		if s.owners[tok] == nil {
			s.owners[tok] = map[int64]bool{}
		}
		for _, id := range t.StoreIDs {
			s.owners[tok][id] = true
			if !slices.Contains(s.stores, id) {
				s.stores = append(s.stores, id)
			}
		}
	}
	for _, a := range cfg.Accounts {
		s.accounts[a.Username] = a
		s.logins[a.Token.Reveal()] = a.Username
	}
	for _, ch := range cfg.RefundUnsupportedChannels {
		s.refundOff[strings.ToLower(strings.TrimSpace(ch))] = true
	}
	s.Reset()
	return s
}

// Reset forgets every batch, ticket, record and rate-limit window, drops
// orders added with AddOrders and pending FailNext statuses, and restores
// the configured faults and the seed. Ids stay unique across resets.
func (s *Sandbox) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = s.cfg.Faults
	s.failNext = nil
	s.rng = rand.New(rand.NewPCG(s.seed, s.seed^0x5f5f_5f5f_5f5f_5f5f))
	// seq goes on: an id from before the reset never names a new batch.
	s.known = map[int64]*orderBook{}
	for store, orders := range s.cfg.Orders {
		s.addOrdersLocked(store, orders)
	}
	s.batches = map[string]*batch{}
	s.tickets = map[string]*ticket{}
	s.byStore = map[int64][]*ticket{}
	s.ops = nil
	s.reqs = nil
	s.counts = Counts{}
	s.windows = map[string]*window{}
}

// SetFaults replaces the faults in force (rate-limit windows start afresh
// when the rate limit changes).
func (s *Sandbox) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.RateLimit != s.faults.RateLimit {
		s.windows = map[string]*window{}
	}
	s.faults = f
}

// Faults returns the faults in force.
func (s *Sandbox) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// FailNext answers the next /v1 requests, one each, with these HTTP
// statuses before anything else is looked at: 429 carries X-RateLimit-Wait
// (Faults.ThrottleWait), 502 and 504 a gateway's HTML, others problem+json.
// Statuses queue behind those not used yet.
func (s *Sandbox) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, statuses...)
}

// AddOrders makes orders known to the store: from then on the store fails
// the tickets of orders it does not know.
func (s *Sandbox) AddOrders(storeID int64, orders ...Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addOrdersLocked(storeID, orders)
}

func (s *Sandbox) addOrdersLocked(storeID int64, orders []Order) {
	b := s.known[storeID]
	if b == nil {
		b = &orderBook{byID: map[int64]Order{}, byRef: map[[2]string]Order{}}
		s.known[storeID] = b
	}
	for _, o := range orders {
		if o.ID > 0 {
			b.byID[o.ID] = o
		}
		if o.Reference != "" {
			b.byRef[[2]string{o.Reference, strings.ToLower(o.ChannelName)}] = o
		}
	}
}

// Operations returns every order entry received, oldest first.
func (s *Sandbox) Operations() []RecordedOperation {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := slices.Clone(s.ops)
	for i := range ops {
		if t, ok := s.tickets[ops[i].TicketID]; ok {
			ops[i].TicketState, _, _ = t.stateAt(now)
			ops[i].TicketMessage = t.messageAt(now)
		}
	}
	return ops
}

// Requests returns every /v1 request answered, oldest first.
func (s *Sandbox) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Counts returns the /v1 requests answered, counted by outcome.
func (s *Sandbox) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Ticket is a ticket as the API shows it now.
type Ticket struct {
	ID, BatchID string
	StoreID     int64
	Operation   string
	State       string
	Message     string
	Payload     json.RawMessage
}

// Tickets returns the store's tickets as the API shows them now, oldest
// first.
func (s *Sandbox) Tickets(storeID int64) []Ticket {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ticket
	for _, t := range s.byStore[storeID] {
		st, _, _ := t.stateAt(now)
		out = append(out, Ticket{ID: t.id, BatchID: t.batchID, StoreID: t.storeID, Operation: t.op,
			State: st, Message: t.messageAt(now), Payload: t.payload})
	}
	return out
}

// Handler serves the API and the /_sandbox endpoints.
func (s *Sandbox) Handler() http.Handler {
	api := http.NewServeMux()
	routes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"POST", "/v1/auth", s.handleAuth},
		{"GET", "/v1/me", s.handleMe},
		{"GET", "/v1/ping", s.handlePing},
		{"POST", "/v1/store/{storeId}/order/{operation}", s.handleOperate},
		{"GET", "/v1/store/{storeId}/ticket", s.handleTickets},
		{"GET", "/v1/store/{storeId}/ticket/{ticketId}", s.handleTicket},
		// One path for both: {operation} is the order id on a GET.
		{"GET", "/v1/store/{storeId}/order/{operation}", s.handleOrder},
	}
	allowed := map[string][]string{}
	var paths []string
	for _, r := range routes {
		api.HandleFunc(r.method+" "+r.path, r.h)
		if allowed[r.path] == nil {
			paths = append(paths, r.path)
		}
		allowed[r.path] = append(allowed[r.path], r.method)
	}
	for _, p := range paths {
		api.HandleFunc(p, methodNotAllowed(strings.Join(allowed[p], ", ")))
	}
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})

	admin := http.NewServeMux()
	admin.HandleFunc("GET /_sandbox/operations", s.handleOperations)
	admin.HandleFunc("GET /_sandbox/requests", s.handleRequests)
	admin.HandleFunc("GET /_sandbox/counts", s.handleCounts)
	admin.HandleFunc("POST /_sandbox/reset", s.handleReset)
	admin.HandleFunc("GET /_sandbox/faults", s.handleGetFaults)
	admin.HandleFunc("PUT /_sandbox/faults", s.handlePutFaults)
	admin.HandleFunc("POST /_sandbox/fail-next", s.handleFailNext)
	admin.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})

	faulty := s.withFaults(api)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
			admin.ServeHTTP(w, r)
			return
		}
		faulty.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; use %s", r.Method, allow))
	}
}

// record keeps what a /v1 request got and logs it.
func (s *Sandbox) record(r *http.Request, status int, start time.Time) {
	path := r.URL.Path
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	s.mu.Lock()
	if len(s.reqs) >= maxRecordedRequests {
		s.reqs = slices.Delete(s.reqs, 0, len(s.reqs)-maxRecordedRequests+1)
	}
	s.reqs = append(s.reqs, RecordedRequest{Time: start, Method: r.Method, Path: path, Status: status})
	s.counts.Requests++
	s.mu.Unlock()
	s.log.Info("request", "method", r.Method, "path", path, "status", status, "duration", time.Since(start))
}

// nextID returns a 24-hex-digit id, unique in this sandbox and reproducible
// under a seed. Call with s.mu held.
func (s *Sandbox) nextID() string {
	s.seq++
	return fmt.Sprintf("%016x%08x", s.rng.Uint64(), s.seq)
}

// chance draws true with probability p. Call with s.mu held.
func (s *Sandbox) chance(p float64) bool {
	return p > 0 && s.rng.Float64() < p
}
