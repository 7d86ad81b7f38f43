package sfsandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// Config configures a Sandbox. Load it with config.Load (the binary does);
// in tests build it in code: its zero value, plus Stores, is fault-free,
// unlimited and resolves tickets at once.
type Config struct {
	// Addr is where the binary listens (Start always takes a loopback port).
	Addr string `env:"SANDBOX_ADDR, default=:8090"`
	// Stores maps tokens to the stores they own:
	// "token1:1001,token2:1002|1003" (a token may own several stores,
	// separated by |; a store may have several tokens).
	Stores Tokens `env:"SANDBOX_STORES, default=sandbox-token:1001"`
	// Accounts are what POST /v1/auth accepts: "user:password:token,…";
	// each token must be one of Stores'.
	Accounts Accounts `env:"SANDBOX_ACCOUNTS"`
	// Orders are the Shopping Feed orders each store knows:
	// "1001:5001@amazon#AMZ-1|5002,1002:7001" (store:id[@channel][#reference]
	// joined by |). A store listed here fails tickets of any other order; a
	// store not listed accepts every order.
	Orders Orders `env:"SANDBOX_ORDERS"`
	// ScheduledFor and RunningFor are how long a ticket stays scheduled,
	// then running, before its final state.
	ScheduledFor time.Duration `env:"SANDBOX_TICKET_SCHEDULED_FOR, default=500ms"`
	RunningFor   time.Duration `env:"SANDBOX_TICKET_RUNNING_FOR, default=1s"`
	// AllowShipWithoutTracking lets a ship without trackingNumber succeed;
	// by default its ticket fails, as marketplaces do.
	AllowShipWithoutTracking bool `env:"SANDBOX_ALLOW_SHIP_WITHOUT_TRACKING"`
	// RefundUnsupportedChannels are the channels (case-insensitive) whose
	// refund tickets fail: "cdiscount,manomano".
	RefundUnsupportedChannels []string `env:"SANDBOX_REFUND_UNSUPPORTED_CHANNELS"`
	// MaxOrdersPerRequest is the most entries one operation POST may hold
	// (0: 100, what the SDK sends at most).
	MaxOrdersPerRequest int `env:"SANDBOX_MAX_ORDERS_PER_REQUEST, default=100"`
	// Seed seeds every random choice (ids, faults, outcomes); 0 picks one
	// from the clock.
	Seed uint64 `env:"SANDBOX_SEED"`
	// Faults are the faults injected from the start; SetFaults changes them.
	Faults Faults
}

// DefaultConfig returns the configuration the binary runs with when no
// variable is set.
func DefaultConfig() Config {
	return Config{
		Addr:                ":8090",
		Stores:              Tokens{{Token: "sandbox-token", StoreIDs: []int64{1001}}},
		ScheduledFor:        500 * time.Millisecond,
		RunningFor:          time.Second,
		MaxOrdersPerRequest: 100,
		Faults: Faults{
			ThrottleWait: time.Second,
			RateLimit:    Rate{Requests: 10, Per: 2 * time.Second},
			StuckFor:     30 * time.Second,
		},
	}
}

// Validate checks cfg and names the variable at fault.
func (c Config) Validate() error {
	if len(c.Stores) == 0 {
		return config.Invalid("SANDBOX_STORES", "no token owns a store")
	}
	owned := map[int64]bool{}
	tokens := map[config.Secret]bool{}
	for _, t := range c.Stores {
		if t.Token == "" {
			return config.Invalid("SANDBOX_STORES", "empty token")
		}
		if len(t.StoreIDs) == 0 {
			return config.Invalid("SANDBOX_STORES", "a token owns no store")
		}
		for _, id := range t.StoreIDs {
			if id <= 0 {
				return config.Invalid("SANDBOX_STORES", "store id %d is not positive", id)
			}
			owned[id] = true
		}
		tokens[t.Token] = true
	}
	users := map[string]bool{}
	for _, a := range c.Accounts {
		if a.Username == "" || a.Password == "" {
			return config.Invalid("SANDBOX_ACCOUNTS", "empty username or password")
		}
		if users[a.Username] {
			return config.Invalid("SANDBOX_ACCOUNTS", "username %q appears twice", a.Username)
		}
		users[a.Username] = true
		if !tokens[a.Token] {
			return config.Invalid("SANDBOX_ACCOUNTS", "the token of %q is not one of SANDBOX_STORES", a.Username)
		}
	}
	for store, orders := range c.Orders {
		if !owned[store] {
			return config.Invalid("SANDBOX_ORDERS", "store %d is not one of SANDBOX_STORES", store)
		}
		for _, o := range orders {
			if o.ID <= 0 {
				return config.Invalid("SANDBOX_ORDERS", "store %d: order id %d is not positive", store, o.ID)
			}
		}
	}
	if c.ScheduledFor < 0 {
		return config.Invalid("SANDBOX_TICKET_SCHEDULED_FOR", "%s is negative", c.ScheduledFor)
	}
	if c.RunningFor < 0 {
		return config.Invalid("SANDBOX_TICKET_RUNNING_FOR", "%s is negative", c.RunningFor)
	}
	if c.MaxOrdersPerRequest < 0 {
		return config.Invalid("SANDBOX_MAX_ORDERS_PER_REQUEST", "%d is negative", c.MaxOrdersPerRequest)
	}
	return c.Faults.Validate()
}

// Faults are the failures the sandbox injects into /v1 requests and
// tickets. Rates are probabilities between 0 and 1.
type Faults struct {
	// Latency delays every answer, plus a random part up to LatencyJitter.
	Latency       time.Duration `env:"SANDBOX_LATENCY"`
	LatencyJitter time.Duration `env:"SANDBOX_LATENCY_JITTER"`
	// StoreLatency delays every answer about one store more: a slow store
	// ("1002=3s,1003=500ms").
	StoreLatency StoreDurations `env:"SANDBOX_STORE_LATENCY"`
	// ErrorRate answers a share of requests with a random 500, 502, 503 or
	// 504 (nothing is processed).
	ErrorRate float64 `env:"SANDBOX_ERROR_RATE"`
	// ThrottleRate answers a share of requests with 429 and
	// X-RateLimit-Wait: ThrottleWait (0: 1s).
	ThrottleRate float64       `env:"SANDBOX_THROTTLE_RATE"`
	ThrottleWait time.Duration `env:"SANDBOX_THROTTLE_WAIT, default=1s"`
	// RateLimit is enforced per token: "10/2s" allows 10 requests in any
	// 2 s span; "none" (the zero Rate) enforces nothing.
	RateLimit Rate `env:"SANDBOX_RATE_LIMIT, default=10/2s"`
	// Strict counts the refused requests in the rate-limit window too, as a
	// limiter that logs every attempt does: a client that retries before
	// the window allows stays refused.
	Strict bool `env:"SANDBOX_STRICT"`
	// TicketFailureRate fails, and TicketCancelRate cancels, a share of the
	// tickets the rules let succeed.
	TicketFailureRate float64 `env:"SANDBOX_TICKET_FAILURE_RATE"`
	TicketCancelRate  float64 `env:"SANDBOX_TICKET_CANCEL_RATE"`
	// StuckRate keeps a share of tickets running StuckFor longer.
	StuckRate float64       `env:"SANDBOX_STUCK_RATE"`
	StuckFor  time.Duration `env:"SANDBOX_STUCK_FOR, default=30s"`
}

// Validate checks f and names the variable at fault.
func (f Faults) Validate() error {
	for _, d := range []struct {
		v    string
		d    time.Duration
		name string
	}{
		{"SANDBOX_LATENCY", f.Latency, "latency"},
		{"SANDBOX_LATENCY_JITTER", f.LatencyJitter, "latency jitter"},
		{"SANDBOX_THROTTLE_WAIT", f.ThrottleWait, "throttle wait"},
		{"SANDBOX_STUCK_FOR", f.StuckFor, "stuck time"},
	} {
		if d.d < 0 {
			return config.Invalid(d.v, "%s %s is negative", d.name, d.d)
		}
	}
	for _, r := range []struct {
		v string
		p float64
	}{
		{"SANDBOX_ERROR_RATE", f.ErrorRate},
		{"SANDBOX_THROTTLE_RATE", f.ThrottleRate},
		{"SANDBOX_TICKET_FAILURE_RATE", f.TicketFailureRate},
		{"SANDBOX_TICKET_CANCEL_RATE", f.TicketCancelRate},
		{"SANDBOX_STUCK_RATE", f.StuckRate},
	} {
		if !(r.p >= 0 && r.p <= 1) {
			return config.Invalid(r.v, "%v is not between 0 and 1", r.p)
		}
	}
	if f.RateLimit.Requests < 0 || f.RateLimit.Per < 0 || (f.RateLimit.Requests > 0) != (f.RateLimit.Per > 0) {
		return config.Invalid("SANDBOX_RATE_LIMIT", "%q: want N/period or none", f.RateLimit)
	}
	return nil
}

// faultsJSON is Faults as /_sandbox/faults shows it: durations as Go
// durations ("250ms"), the rate limit as "10/2s".
type faultsJSON struct {
	Latency           string  `json:"latency"`
	LatencyJitter     string  `json:"latencyJitter"`
	ErrorRate         float64 `json:"errorRate"`
	ThrottleRate      float64 `json:"throttleRate"`
	ThrottleWait      string  `json:"throttleWait"`
	RateLimit         Rate    `json:"rateLimit"`
	Strict            bool    `json:"strict"`
	StoreLatency      string  `json:"storeLatency"`
	TicketFailureRate float64 `json:"ticketFailureRate"`
	TicketCancelRate  float64 `json:"ticketCancelRate"`
	StuckRate         float64 `json:"stuckRate"`
	StuckFor          string  `json:"stuckFor"`
}

// MarshalJSON shows durations as "250ms" and the rate limit as "10/2s".
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency: f.Latency.String(), LatencyJitter: f.LatencyJitter.String(),
		ErrorRate: f.ErrorRate, ThrottleRate: f.ThrottleRate, ThrottleWait: f.ThrottleWait.String(),
		RateLimit: f.RateLimit, Strict: f.Strict, StoreLatency: f.StoreLatency.String(),
		TicketFailureRate: f.TicketFailureRate, TicketCancelRate: f.TicketCancelRate,
		StuckRate: f.StuckRate, StuckFor: f.StuckFor.String(),
	})
}

// UnmarshalJSON reads what MarshalJSON writes; fields absent from the JSON
// keep their value, so a partial object updates only what it names.
func (f *Faults) UnmarshalJSON(b []byte) error {
	raw, err := f.MarshalJSON()
	if err != nil {
		return err
	}
	var w faultsJSON
	if err := json.Unmarshal(raw, &w); err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	var g Faults
	for _, d := range []struct {
		s    string
		into *time.Duration
		name string
	}{
		{w.Latency, &g.Latency, "latency"},
		{w.LatencyJitter, &g.LatencyJitter, "latencyJitter"},
		{w.ThrottleWait, &g.ThrottleWait, "throttleWait"},
		{w.StuckFor, &g.StuckFor, "stuckFor"},
	} {
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		*d.into = v
	}
	g.ErrorRate, g.ThrottleRate, g.RateLimit, g.Strict = w.ErrorRate, w.ThrottleRate, w.RateLimit, w.Strict
	if err := g.StoreLatency.UnmarshalText([]byte(w.StoreLatency)); err != nil {
		return fmt.Errorf("storeLatency: %w", err)
	}
	g.TicketFailureRate, g.TicketCancelRate, g.StuckRate = w.TicketFailureRate, w.TicketCancelRate, w.StuckRate
	*f = g
	return nil
}

// StoreDurations maps a store id to a duration: "1002=3s,1003=500ms".
type StoreDurations map[int64]time.Duration

// UnmarshalText reads "store=duration,…"; empty is none.
func (d *StoreDurations) UnmarshalText(b []byte) error {
	var out StoreDurations
	for _, item := range splitList(string(b), ",") {
		if out == nil {
			out = StoreDurations{}
		}
		ss, ds, ok := strings.Cut(item, "=")
		store, err := strconv.ParseInt(strings.TrimSpace(ss), 10, 64)
		if !ok || err != nil || store <= 0 {
			return fmt.Errorf("%q: want store=duration", item)
		}
		v, err := time.ParseDuration(strings.TrimSpace(ds))
		if err != nil || v < 0 {
			return fmt.Errorf("%q: want store=duration", item)
		}
		out[store] = v
	}
	*d = out
	return nil
}

// String is the form UnmarshalText reads, by store id.
func (d StoreDurations) String() string {
	ids := make([]int64, 0, len(d))
	for id := range d {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10) + "=" + d[id].String()
	}
	return strings.Join(parts, ",")
}

// Rate is "Requests per Per"; the zero Rate means unlimited.
type Rate struct {
	Requests int
	Per      time.Duration
}

// Unlimited reports whether r enforces nothing.
func (r Rate) Unlimited() bool { return r.Requests == 0 }

// String is "10/2s", or "none".
func (r Rate) String() string {
	if r.Unlimited() {
		return "none"
	}
	return fmt.Sprintf("%d/%s", r.Requests, r.Per)
}

// MarshalText writes String.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads "N/period" ("10/2s", or "10/2" in seconds, as
// Shopping Feed's X-RateLimit-Limit shows it) or "none". Its errors say
// "rate limit": go-envconfig does not prefix a struct decoder's error with
// the field, so config.Load cannot name SANDBOX_RATE_LIMIT itself.
func (r *Rate) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" || strings.EqualFold(s, "none") || s == "0" {
		*r = Rate{}
		return nil
	}
	ns, ps, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("rate limit %q is not N/period (e.g. 10/2s) or none", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 1 || n > 1_000_000 {
		return fmt.Errorf("rate limit %q: request count must be a positive integer", s)
	}
	ps = strings.TrimSpace(ps)
	var per time.Duration
	if secs, err := strconv.ParseFloat(ps, 64); err == nil && !math.IsNaN(secs) && secs < 3600 {
		per = time.Duration(secs * float64(time.Second))
	} else if per, err = time.ParseDuration(ps); err != nil {
		return fmt.Errorf("rate limit %q: period must be a duration (2s) or seconds (2)", s)
	}
	if per <= 0 || per > time.Hour {
		return fmt.Errorf("rate limit %q: period must be positive and at most 1h", s)
	}
	*r = Rate{Requests: n, Per: per}
	return nil
}

// TokenStores is one token and the stores it owns.
type TokenStores struct {
	Token    config.Secret
	StoreIDs []int64
}

// Tokens is SANDBOX_STORES: "token1:1001,token2:1002|1003".
type Tokens []TokenStores

// UnmarshalText reads "token:store|store,…".
func (t *Tokens) UnmarshalText(b []byte) error {
	var out Tokens
	for _, item := range splitList(string(b), ",") {
		tok, stores, ok := strings.Cut(item, ":")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" {
			return fmt.Errorf("entry %d: want token:store[|store…]", len(out)+1)
		}
		ts := TokenStores{Token: config.Secret(tok)}
		for _, s := range splitList(stores, "|") {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("entry %d: store id %q is not a positive integer", len(out)+1, s)
			}
			ts.StoreIDs = append(ts.StoreIDs, id)
		}
		if len(ts.StoreIDs) == 0 {
			return fmt.Errorf("entry %d: the token owns no store", len(out)+1)
		}
		out = append(out, ts)
	}
	*t = out
	return nil
}

// Account is a login POST /v1/auth trades for Token.
type Account struct {
	Username string
	Password config.Secret
	Token    config.Secret
}

// Accounts is SANDBOX_ACCOUNTS: "user:password:token,…".
type Accounts []Account

// UnmarshalText reads "user:password:token,…" (the password cannot hold a
// colon; the token can).
func (a *Accounts) UnmarshalText(b []byte) error {
	var out Accounts
	for _, item := range splitList(string(b), ",") {
		parts := strings.SplitN(item, ":", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return fmt.Errorf("entry %d: want user:password:token", len(out)+1)
		}
		out = append(out, Account{Username: parts[0], Password: config.Secret(parts[1]), Token: config.Secret(parts[2])})
	}
	*a = out
	return nil
}

// Order is an order a store knows. ChannelName, when known, decides the
// refund rule for entries sent by id.
type Order struct {
	ID          int64
	Reference   string
	ChannelName string
}

// Orders maps a store id to the orders it knows.
type Orders map[int64][]Order

// UnmarshalText reads "store:id[@channel][#reference]|…,store:…".
func (o *Orders) UnmarshalText(b []byte) error {
	out := Orders{}
	for _, item := range splitList(string(b), ",") {
		ss, list, ok := strings.Cut(item, ":")
		store, err := strconv.ParseInt(strings.TrimSpace(ss), 10, 64)
		if !ok || err != nil || store <= 0 {
			return fmt.Errorf("entry %q: want store:id[@channel][#reference]|…", item)
		}
		for _, spec := range splitList(list, "|") {
			var ord Order
			spec, ord.Reference, _ = strings.Cut(spec, "#")
			spec, ord.ChannelName, _ = strings.Cut(spec, "@")
			ord.ID, err = strconv.ParseInt(strings.TrimSpace(spec), 10, 64)
			if err != nil || ord.ID <= 0 {
				return fmt.Errorf("store %d: order id %q is not a positive integer", store, spec)
			}
			ord.Reference, ord.ChannelName = strings.TrimSpace(ord.Reference), strings.TrimSpace(ord.ChannelName)
			out[store] = append(out[store], ord)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	*o = out
	return nil
}

// splitList splits s on sep, trims each part and drops empty ones.
func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
