package sfsandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var atomRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)

func TestOperateAcceptsABatch(t *testing.T) {
	f := newFixture(t, testConfig())
	body := `{"order":[{"id":5001,"carrier":"Colissimo","trackingNumber":"6A1","trackingLink":"https://t/6A1","items":[],"warehouseId":null},` +
		`{"reference":"AMZ-1","channelName":"amazon","carrier":"UPS","trackingNumber":"1Z"}]}`
	a := f.do(t, "POST", "/v1/store/1001/order/ship", tokA, body)
	if a.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	m := a.json(t)
	batch, _ := m["id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(batch) {
		t.Errorf("batch id %q is not 24 hex digits", batch)
	}
	link := m["_links"].(map[string]any)["ticket"].(map[string]any)["href"]
	if link != "/v1/store/1001/ticket?batchId="+batch {
		t.Errorf("_links.ticket.href = %v", link)
	}

	ops := f.sb.Operations()
	if len(ops) != 2 {
		t.Fatalf("%d operations recorded, want 2", len(ops))
	}
	wantEntries := []string{
		`{"id":5001,"carrier":"Colissimo","trackingNumber":"6A1","trackingLink":"https://t/6A1","items":[],"warehouseId":null}`,
		`{"reference":"AMZ-1","channelName":"amazon","carrier":"UPS","trackingNumber":"1Z"}`,
	}
	for i, op := range ops {
		if op.StoreID != 1001 || op.Operation != "ship" || op.BatchID != batch || op.TicketID == "" || !op.Time.Equal(f.clock.Now()) {
			t.Errorf("operation %d = %+v", i, op)
		}
		if string(op.Entry) != wantEntries[i] {
			t.Errorf("operation %d entry = %s, want it as sent: %s", i, op.Entry, wantEntries[i])
		}
	}
	if ops[0].TicketID == ops[1].TicketID {
		t.Error("two entries share a ticket")
	}

	tickets, _ := f.tickets(t, tokA, "1001", batch)
	if len(tickets) != 2 {
		t.Fatalf("%d tickets, want one per entry", len(tickets))
	}
	for i, tk := range tickets {
		if tk["id"] != ops[i].TicketID || tk["batchId"] != batch {
			t.Errorf("ticket %d: id %v batch %v, want %s %s", i, tk["id"], tk["batchId"], ops[i].TicketID, batch)
		}
		payload, _ := json.Marshal(tk["payload"])
		var want any
		_ = json.Unmarshal([]byte(wantEntries[i]), &want)
		if diff := cmp.Diff(want, tk["payload"]); diff != "" {
			t.Errorf("ticket %d payload %s differs from the entry (-want +got):\n%s", i, payload, diff)
		}
	}
	if _, ok := tickets[0]["payload"].(map[string]any)["reference"]; ok {
		t.Error("an entry sent by id got a reference in its payload")
	}
}

func TestTicketLifecycle(t *testing.T) {
	cfg := testConfig()
	cfg.ScheduledFor = 2 * time.Second
	cfg.RunningFor = 3 * time.Second
	f := newFixture(t, cfg)
	batch := f.post(t, tokA, "1001", "deliver", `{"order":[{"id":1},{"id":2}]}`)
	created := f.clock.Now().UTC().Format(atomLayout)

	steps := []struct {
		after      time.Duration
		state      string
		started    bool
		finished   bool
		processing bool
	}{
		{0, StateScheduled, false, false, true},
		{1999 * time.Millisecond, StateScheduled, false, false, true},
		{time.Millisecond, StateRunning, true, false, true},
		{2999 * time.Millisecond, StateRunning, true, false, true},
		{time.Millisecond, StateSucceed, true, true, false},
		{time.Hour, StateSucceed, true, true, false},
	}
	for _, st := range steps {
		f.clock.Add(st.after)
		tickets, processing := f.tickets(t, tokA, "1001", batch)
		if processing != st.processing {
			t.Errorf("at +%s: meta.processing = %v, want %v", st.after, processing, st.processing)
		}
		for _, tk := range tickets {
			if tk["state"] != st.state {
				t.Errorf("at +%s: state %v, want %s", st.after, tk["state"], st.state)
			}
			if tk["scheduledAt"] != created {
				t.Errorf("scheduledAt = %v, want %s", tk["scheduledAt"], created)
			}
			for _, x := range []struct {
				field string
				set   bool
			}{{"startedAt", st.started}, {"finishedAt", st.finished}} {
				v := tk[x.field]
				if x.set != (v != nil) {
					t.Errorf("at +%s: %s = %v, want set=%v", st.after, x.field, v, x.set)
				}
				if s, ok := v.(string); ok && !atomRE.MatchString(s) {
					t.Errorf("%s = %q, not the API's date format", x.field, s)
				}
			}
			if tk["result"] != nil {
				t.Errorf("a succeeding ticket has a result: %v", tk["result"])
			}
		}
	}
	// The ticket reads the same way alone.
	tickets, _ := f.tickets(t, tokA, "1001", batch)
	a := f.do(t, "GET", "/v1/store/1001/ticket/"+tickets[1]["id"].(string), tokA, "")
	if a.status != http.StatusOK {
		t.Fatalf("GET ticket: %d %s", a.status, a.body)
	}
	if diff := cmp.Diff(tickets[1], a.json(t)); diff != "" {
		t.Errorf("ticket alone differs from its list entry:\n%s", diff)
	}
}

func TestOperateRejects(t *testing.T) {
	many := `{"order":[` + strings.Repeat(`{"id":1},`, 100) + `{"id":1}]}`
	tests := []struct {
		name   string
		op     string
		body   string
		detail string
	}{
		{"malformed JSON", "ship", `{"order":[{"id":1}`, "malformed JSON"},
		{"trailing data", "deliver", `{"order":[{"id":1}]} {}`, "after the JSON object"},
		{"not an object", "deliver", `[{"id":1}]`, "malformed JSON"},
		{"null body", "deliver", `null`, "must be a JSON object"},
		{"empty body", "deliver", ``, "malformed JSON"},
		{"unknown top field", "deliver", `{"order":[{"id":1}],"orders":[]}`, `unknown field "orders"`},
		{"missing order", "deliver", `{}`, `missing field "order"`},
		{"order not a list", "deliver", `{"order":{"id":1}}`, "must be a list"},
		{"empty order", "deliver", `{"order":[]}`, "is empty"},
		{"too many orders", "deliver", many, "101 orders in one request; at most 100"},
		{"entry not an object", "deliver", `{"order":[5001]}`, "order[0]: must be an object"},
		{"missing identifier", "ship", `{"order":[{"carrier":"UPS","trackingNumber":"1"}]}`, "order[0]: missing order identifier"},
		{"reference without channel", "cancel", `{"order":[{"reference":"R","reason":""}]}`, "missing order identifier"},
		{"identifier missing on a later entry", "deliver", `{"order":[{"id":1},{"channelName":"amazon"}]}`, "order[1]: missing order identifier"},
		{"id as a string", "deliver", `{"order":[{"id":"5001"}]}`, "id must be a positive integer"},
		{"id negative", "deliver", `{"order":[{"id":-1}]}`, "id must be a positive integer"},
		{"id fractional", "deliver", `{"order":[{"id":1.5}]}`, "id must be a positive integer"},
		{"reference not a string", "deliver", `{"order":[{"reference":1,"channelName":"a"}]}`, "reference: must be a string"},
		{"ship field misspelt", "ship", `{"order":[{"id":1,"tracking_number":"X"}]}`, `field "tracking_number" is not accepted by ship`},
		{"reason on ship", "ship", `{"order":[{"id":1,"reason":""}]}`, `field "reason" is not accepted by ship`},
		{"tracking on deliver", "deliver", `{"order":[{"id":1,"trackingNumber":"X"}]}`, `not accepted by deliver`},
		{"carrier not a string", "ship", `{"order":[{"id":1,"carrier":7}]}`, "carrier: must be a string"},
		{"items not a list", "ship", `{"order":[{"id":1,"items":{}}]}`, "items: must be a list"},
		{"item without positive quantity", "ship", `{"order":[{"id":1,"items":[{"id":3,"quantity":0}]}]}`, "items: [0]: quantity"},
		{"item unknown field", "ship", `{"order":[{"id":1,"items":[{"sku":"x"}]}]}`, `unknown field "sku"`},
		{"warehouseId not a string", "ship", `{"order":[{"id":1,"warehouseId":3}]}`, "warehouseId: must be a string"},
		{"returnInfo unknown field", "ship", `{"order":[{"id":1,"returnInfo":{"carrier":"A","tracking":"B"}}]}`, `returnInfo: unknown field "tracking"`},
		{"refund not an object", "refund", `{"order":[{"id":1,"refund":true}]}`, "refund: must be an object"},
		{"refund shipping not a bool", "refund", `{"order":[{"id":1,"refund":{"shipping":"yes","products":[]}}]}`, "shipping: must be a boolean"},
		{"refund product without reference string", "refund", `{"order":[{"id":1,"refund":{"shipping":true,"products":[{"reference":3,"quantity":1}]}}]}`, "products: [0]: reference"},
		{"cancel reason not a string", "cancel", `{"order":[{"id":1,"reason":false}]}`, "reason: must be a string"},
		{"acknowledge without storeReference", "acknowledge", `{"order":[{"id":1,"status":"success"}]}`, `missing field "storeReference"`},
		{"acknowledge without status", "acknowledge", `{"order":[{"id":1,"storeReference":"S"}]}`, `missing field "status"`},
		{"acknowledge bad status", "acknowledge", `{"order":[{"id":1,"status":"ok","storeReference":"S"}]}`, `status: must be "success" or "error"`},
		{"acknowledge bad date", "acknowledge", `{"order":[{"id":1,"status":"success","storeReference":"S","acknowledgedAt":"yesterday"}]}`, "not an ISO-8601"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig())
			f.do(t, "POST", "/v1/store/1001/order/"+tt.op, tokA, tt.body).problem(t, http.StatusBadRequest, tt.detail)
			if ops := f.sb.Operations(); len(ops) != 0 {
				t.Errorf("a rejected request recorded %d operations", len(ops))
			}
			if len(f.sb.Tickets(1001)) != 0 {
				t.Error("a rejected request created tickets")
			}
		})
	}
}

func TestOperateAcceptsEveryOperationAsTheModuleSendsIt(t *testing.T) {
	bodies := map[string]string{
		"ship":          `{"order":[{"id":1,"carrier":"C","trackingNumber":"T","trackingLink":"L","items":[{"id":9,"quantity":1}],"warehouseId":"W","returnInfo":{"carrier":"C","trackingNumber":"R"}}]}`,
		"cancel":        `{"order":[{"id":1,"reason":""}]}`,
		"refund":        `{"order":[{"id":1,"refund":{"shipping":true,"products":[]}}]}`,
		"deliver":       `{"order":[{"id":1}]}`,
		"accept":        `{"order":[{"reference":"R","channelName":"C","reason":""}]}`,
		"refuse":        `{"order":[{"id":1}]}`,
		"acknowledge":   `{"order":[{"id":1,"status":"error","storeReference":"S","acknowledgedAt":"2026-03-01T09:30:00+00:00","message":"m"}]}`,
		"unacknowledge": `{"order":[{"id":1}]}`,
	}
	if len(bodies) != len(operationFields) {
		t.Fatalf("test covers %d operations, the sandbox has %d", len(bodies), len(operationFields))
	}
	f := newFixture(t, testConfig())
	for op, body := range bodies {
		t.Run(op, func(t *testing.T) {
			batch := f.post(t, tokA, "1001", op, body)
			tickets, _ := f.tickets(t, tokA, "1001", batch)
			if len(tickets) != 1 || tickets[0]["state"] != StateSucceed {
				t.Errorf("tickets = %v, want one that succeeds", tickets)
			}
		})
	}
}

func TestAccessAndRoutes(t *testing.T) {
	tests := []struct {
		name, method, path, token, body string
		status                          int
		detail                          string
	}{
		{"no token", "POST", "/v1/store/1001/order/deliver", "", `{"order":[{"id":1}]}`, 403, "Missing bearer token"},
		{"unknown token", "POST", "/v1/store/1001/order/deliver", "nope", `{"order":[{"id":1}]}`, 403, "Invalid or expired"},
		{"me without token", "GET", "/v1/me", "", "", 403, "Missing bearer token"},
		{"tickets with unknown token", "GET", "/v1/store/1001/ticket", "nope", "", 403, "Invalid"},
		{"store of another token", "POST", "/v1/store/2001/order/deliver", tokA, `{"order":[{"id":1}]}`, 403, "Access to store 2001 is denied"},
		{"tickets of another token's store", "GET", "/v1/store/1001/ticket", tokB, "", 403, "denied"},
		{"store not a number", "GET", "/v1/store/abc/ticket", tokA, "", 404, `Store "abc" not found`},
		{"unknown operation", "POST", "/v1/store/1001/order/teleport", tokA, `{"order":[{"id":1}]}`, 404, `Unknown order operation "teleport"`},
		{"upload-documents is not simulated", "POST", "/v1/store/1001/order/upload-documents", tokA, `{}`, 404, "Unknown order operation"},
		{"unknown ticket", "GET", "/v1/store/1001/ticket/ffff", tokA, "", 404, `Ticket "ffff" not found`},
		{"unknown batch", "GET", "/v1/store/1001/ticket?batchId=ffff", tokA, "", 404, `Batch "ffff" not found`},
		{"bad page", "GET", "/v1/store/1001/ticket?page=0", tokA, "", 400, "page"},
		{"limit above 200", "GET", "/v1/store/1001/ticket?limit=201", tokA, "", 400, "limit"},
		{"GET on an operation", "GET", "/v1/store/1001/order/ship", tokA, "", 405, "use POST"},
		{"POST on me", "POST", "/v1/me", tokA, "", 405, "use GET"},
		{"unknown path", "GET", "/v2/me", tokA, "", 404, "no route"},
		{"unknown sandbox path", "GET", "/_sandbox/nothing", "", "", 404, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig())
			f.do(t, tt.method, tt.path, tt.token, tt.body).problem(t, tt.status, tt.detail)
			if len(f.sb.Operations()) != 0 {
				t.Error("a refused request recorded operations")
			}
		})
	}
}

func TestTicketsAreScopedToTheirStore(t *testing.T) {
	f := newFixture(t, testConfig())
	batch := f.post(t, tokA, "1001", "deliver", `{"order":[{"id":1}]}`)
	tickets, _ := f.tickets(t, tokA, "1001", batch)
	// tokA owns 1002 too, but the batch and ticket belong to 1001.
	f.do(t, "GET", "/v1/store/1002/ticket?batchId="+batch, tokA, "").problem(t, 404, "not found")
	f.do(t, "GET", "/v1/store/1002/ticket/"+tickets[0]["id"].(string), tokA, "").problem(t, 404, "not found")
}

func TestTicketPages(t *testing.T) {
	f := newFixture(t, testConfig())
	var entries []string
	for i := 1; i <= 25; i++ {
		entries = append(entries, fmt.Sprintf(`{"id":%d}`, i))
	}
	batch := f.post(t, tokA, "1001", "deliver", `{"order":[`+strings.Join(entries, ",")+`]}`)
	other := f.post(t, tokA, "1001", "deliver", `{"order":[{"id":99}]}`)

	var seen []float64
	for page := 1; page <= 4; page++ {
		a := f.do(t, "GET", fmt.Sprintf("/v1/store/1001/ticket?batchId=%s&page=%d&limit=10", batch, page), tokA, "")
		if a.status != 200 {
			t.Fatalf("page %d: %d %s", page, a.status, a.body)
		}
		m := a.json(t)
		list := m["_embedded"].(map[string]any)["ticket"].([]any)
		wantCount := map[int]int{1: 10, 2: 10, 3: 5, 4: 0}[page]
		if m["total"] != 25.0 || m["pages"] != 3.0 || m["page"] != float64(page) || m["limit"] != 10.0 || m["count"] != float64(wantCount) || len(list) != wantCount {
			t.Errorf("page %d: total %v pages %v page %v limit %v count %v (%d listed)", page, m["total"], m["pages"], m["page"], m["limit"], m["count"], len(list))
		}
		links := m["_links"].(map[string]any)
		_, hasNext := links["next"]
		_, hasPrev := links["prev"]
		if hasNext != (page < 3) || hasPrev != (page > 1) {
			t.Errorf("page %d links: %v", page, links)
		}
		if page < 3 {
			next := links["next"].(map[string]any)["href"].(string)
			if !strings.Contains(next, fmt.Sprintf("page=%d", page+1)) || !strings.Contains(next, "batchId="+batch) {
				t.Errorf("next link %q", next)
			}
		}
		for _, x := range list {
			seen = append(seen, x.(map[string]any)["payload"].(map[string]any)["id"].(float64))
		}
	}
	if len(seen) != 25 {
		t.Fatalf("%d tickets over the pages, want 25", len(seen))
	}
	for i, id := range seen {
		if id != float64(i+1) {
			t.Fatalf("tickets out of entry order: %v", seen)
		}
	}
	// Without batchId: every ticket of the store, default page size 20.
	m := f.do(t, "GET", "/v1/store/1001/ticket", tokA, "").json(t)
	if m["total"] != 26.0 || m["limit"] != 20.0 || m["count"] != 20.0 {
		t.Errorf("store tickets: total %v limit %v count %v", m["total"], m["limit"], m["count"])
	}
	_ = other
}

func TestTicketRules(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		prepare func(*Sandbox)
		op      string
		body    string
		state   string
		message string
	}{
		{name: "ship with tracking succeeds", op: "ship", body: `{"order":[{"id":1,"carrier":"C","trackingNumber":"T"}]}`, state: StateSucceed},
		{name: "ship without tracking number fails", op: "ship", body: `{"order":[{"id":1,"carrier":"C","trackingNumber":""}]}`,
			state: StateFailed, message: "tracking number is required"},
		{name: "ship with tracking number absent fails", op: "ship", body: `{"order":[{"id":1,"carrier":"C"}]}`,
			state: StateFailed, message: "tracking number is required"},
		{name: "ship without tracking allowed", cfg: func(c *Config) { c.AllowShipWithoutTracking = true },
			op: "ship", body: `{"order":[{"id":1,"carrier":"C"}]}`, state: StateSucceed},
		{name: "refund on an unsupported channel by reference", cfg: func(c *Config) { c.RefundUnsupportedChannels = []string{"CDiscount"} },
			op: "refund", body: `{"order":[{"reference":"R","channelName":"cdiscount","refund":{"shipping":true,"products":[]}}]}`,
			state: StateFailed, message: "Refund is not supported by channel cdiscount"},
		{name: "refund on a supported channel", cfg: func(c *Config) { c.RefundUnsupportedChannels = []string{"cdiscount"} },
			op: "refund", body: `{"order":[{"reference":"R","channelName":"amazon","refund":{"shipping":true,"products":[]}}]}`, state: StateSucceed},
		{name: "refund by id of a known order on an unsupported channel",
			cfg:     func(c *Config) { c.RefundUnsupportedChannels = []string{"manomano"} },
			prepare: func(s *Sandbox) { s.AddOrders(1001, Order{ID: 7, ChannelName: "ManoMano"}) },
			op:      "refund", body: `{"order":[{"id":7,"refund":{"shipping":true,"products":[]}}]}`,
			state: StateFailed, message: "not supported by channel ManoMano"},
		{name: "unknown order id of a store with known orders",
			prepare: func(s *Sandbox) { s.AddOrders(1001, Order{ID: 7}) },
			op:      "deliver", body: `{"order":[{"id":8}]}`, state: StateFailed, message: "Order 8 not found in store 1001"},
		{name: "known order id",
			prepare: func(s *Sandbox) { s.AddOrders(1001, Order{ID: 7}) },
			op:      "deliver", body: `{"order":[{"id":7}]}`, state: StateSucceed},
		{name: "known order by reference, channel case-insensitive",
			cfg: func(c *Config) { c.Orders = Orders{1001: {{ID: 7, Reference: "AMZ-9", ChannelName: "Amazon"}}} },
			op:  "cancel", body: `{"order":[{"reference":"AMZ-9","channelName":"amazon","reason":""}]}`, state: StateSucceed},
		{name: "unknown reference of a store with known orders",
			cfg: func(c *Config) { c.Orders = Orders{1001: {{ID: 7, Reference: "AMZ-9", ChannelName: "amazon"}}} },
			op:  "cancel", body: `{"order":[{"reference":"AMZ-8","channelName":"amazon","reason":""}]}`, state: StateFailed, message: `Order "AMZ-8" on channel "amazon" not found`},
		{name: "known orders of another store do not restrict this one",
			prepare: func(s *Sandbox) { s.AddOrders(1002, Order{ID: 7}) },
			op:      "deliver", body: `{"order":[{"id":8}]}`, state: StateSucceed},
		{name: "failure rate", cfg: func(c *Config) { c.Faults.TicketFailureRate = 1 },
			op: "deliver", body: `{"order":[{"id":1}]}`, state: StateFailed, message: "refused"},
		{name: "cancel rate", cfg: func(c *Config) { c.Faults.TicketCancelRate = 1 },
			op: "deliver", body: `{"order":[{"id":1}]}`, state: StateCanceled, message: "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			f := newFixture(t, cfg)
			if tt.prepare != nil {
				tt.prepare(f.sb)
			}
			batch := f.post(t, tokA, "1001", tt.op, tt.body)
			tickets, processing := f.tickets(t, tokA, "1001", batch)
			if processing || len(tickets) != 1 {
				t.Fatalf("processing %v, %d tickets", processing, len(tickets))
			}
			tk := tickets[0]
			if tk["state"] != tt.state {
				t.Errorf("state = %v, want %s", tk["state"], tt.state)
			}
			var msg string
			if r, ok := tk["result"].(map[string]any); ok {
				msg, _ = r["message"].(string)
			}
			if tt.message == "" && tk["result"] != nil {
				t.Errorf("result = %v, want null", tk["result"])
			}
			if !strings.Contains(msg, tt.message) {
				t.Errorf("result.message = %q, want it to contain %q", msg, tt.message)
			}
			// The operation log tells the same outcome.
			ops := f.sb.Operations()
			if len(ops) != 1 || ops[0].TicketState != tt.state || ops[0].TicketMessage != msg {
				t.Errorf("operations = %+v, want one whose ticket is %s with message %q", ops, tt.state, msg)
			}
		})
	}
}

func TestFailedTicketShowsItsMessageOnlyWhenFinished(t *testing.T) {
	cfg := testConfig()
	cfg.RunningFor = time.Second
	f := newFixture(t, cfg)
	batch := f.post(t, tokA, "1001", "ship", `{"order":[{"id":1}]}`)
	tickets, _ := f.tickets(t, tokA, "1001", batch)
	if tickets[0]["state"] != StateRunning || tickets[0]["result"] != nil {
		t.Errorf("running ticket: state %v result %v", tickets[0]["state"], tickets[0]["result"])
	}
	f.clock.Add(time.Second)
	tickets, _ = f.tickets(t, tokA, "1001", batch)
	if tickets[0]["state"] != StateFailed || tickets[0]["result"] == nil {
		t.Errorf("finished ticket: state %v result %v", tickets[0]["state"], tickets[0]["result"])
	}
}

func TestStuckTickets(t *testing.T) {
	cfg := testConfig()
	cfg.RunningFor = time.Second
	cfg.Faults.StuckRate = 1
	cfg.Faults.StuckFor = time.Minute
	f := newFixture(t, cfg)
	batch := f.post(t, tokA, "1001", "deliver", `{"order":[{"id":1}]}`)
	f.clock.Add(59 * time.Second)
	if tk, processing := f.tickets(t, tokA, "1001", batch); tk[0]["state"] != StateRunning || !processing {
		t.Errorf("after 59s: %v processing %v, want still running", tk[0]["state"], processing)
	}
	f.clock.Add(2 * time.Second)
	if tk, processing := f.tickets(t, tokA, "1001", batch); tk[0]["state"] != StateSucceed || processing {
		t.Errorf("after 61s: %v processing %v, want succeed", tk[0]["state"], processing)
	}
}

func TestEnforcedRateLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.RateLimit = Rate{Requests: 3, Per: 2 * time.Second}
	f := newFixture(t, cfg)
	for i := range 3 {
		a := f.do(t, "GET", "/v1/me", tokA, "")
		if a.status != 200 {
			t.Fatalf("request %d: %d", i, a.status)
		}
		if a.header.Get("X-RateLimit-Limit") != "3/2" || a.header.Get("X-RateLimit-Remaining") != fmt.Sprint(2-i) {
			t.Errorf("request %d: limit %q remaining %q", i, a.header.Get("X-RateLimit-Limit"), a.header.Get("X-RateLimit-Remaining"))
		}
		f.clock.Add(500 * time.Millisecond)
	}
	// Now at +1.5s: the first request leaves the span at +2s.
	a := f.do(t, "POST", "/v1/store/1001/order/deliver", tokA, `{"order":[{"id":1}]}`)
	a.problem(t, http.StatusTooManyRequests, "Rate limit of 3 requests per 2s exceeded")
	if w := a.header.Get("X-RateLimit-Wait"); w != "0.5" {
		t.Errorf("X-RateLimit-Wait = %q, want 0.5", w)
	}
	if len(f.sb.Operations()) != 0 {
		t.Error("a throttled operation was recorded")
	}
	// Another token has its own span.
	if a := f.do(t, "GET", "/v1/me", tokB, ""); a.status != 200 {
		t.Errorf("other token: %d", a.status)
	}
	f.clock.Add(500 * time.Millisecond)
	if a := f.do(t, "GET", "/v1/me", tokA, ""); a.status != 200 {
		t.Errorf("after the wait: %d %s", a.status, a.body)
	}
	// Unlimited again at run time.
	fl := f.sb.Faults()
	fl.RateLimit = Rate{}
	f.sb.SetFaults(fl)
	for i := range 10 {
		if a := f.do(t, "GET", "/v1/me", tokA, ""); a.status != 200 || a.header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("unlimited request %d: %d, limit header %q", i, a.status, a.header.Get("X-RateLimit-Limit"))
		}
	}
}

func TestInjectedFaults(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		cfg := testConfig()
		cfg.Faults.ErrorRate = 1
		f := newFixture(t, cfg)
		seen := map[int]bool{}
		for range 40 {
			a := f.do(t, "POST", "/v1/store/1001/order/deliver", tokA, `{"order":[{"id":1}]}`)
			seen[a.status] = true
			switch a.status {
			case 500, 503:
				a.problem(t, a.status, "sandbox fault")
			case 502, 504:
				if !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "<html>") {
					t.Errorf("%d: %q %q", a.status, a.header.Get("Content-Type"), a.body)
				}
			default:
				t.Fatalf("status %d under ErrorRate 1", a.status)
			}
		}
		if len(seen) != 4 {
			t.Errorf("40 draws gave statuses %v, want all of 500, 502, 503, 504", seen)
		}
		if len(f.sb.Operations()) != 0 {
			t.Error("failed requests recorded operations")
		}
	})
	t.Run("429", func(t *testing.T) {
		cfg := testConfig()
		cfg.Faults.ThrottleRate = 1
		cfg.Faults.ThrottleWait = 250 * time.Millisecond
		f := newFixture(t, cfg)
		a := f.do(t, "GET", "/v1/me", tokA, "")
		a.problem(t, 429, "too many requests")
		if a.header.Get("X-RateLimit-Wait") != "0.25" {
			t.Errorf("X-RateLimit-Wait = %q", a.header.Get("X-RateLimit-Wait"))
		}
	})
	t.Run("latency", func(t *testing.T) {
		cfg := testConfig()
		cfg.Faults.Latency = 30 * time.Millisecond
		cfg.Faults.LatencyJitter = 20 * time.Millisecond
		f := newFixture(t, cfg)
		start := time.Now()
		if a := f.do(t, "GET", "/v1/ping", "", ""); a.status != 200 {
			t.Fatalf("ping: %d", a.status)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("answered in %s, want at least the 30ms latency", d)
		}
		start = time.Now()
		f.do(t, "GET", "/_sandbox/operations", "", "")
		if d := time.Since(start); d >= 30*time.Millisecond {
			t.Errorf("/_sandbox took %s: faults must not apply to it", d)
		}
	})
	t.Run("fail next", func(t *testing.T) {
		f := newFixture(t, testConfig())
		f.sb.FailNext(503, 401, 429)
		var got []int
		for range 4 {
			got = append(got, f.do(t, "GET", "/v1/me", tokA, "").status)
		}
		if diff := cmp.Diff([]int{503, 401, 429, 200}, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})
	t.Run("faults change at run time", func(t *testing.T) {
		f := newFixture(t, testConfig())
		f.sb.SetFaults(Faults{ErrorRate: 1})
		if a := f.do(t, "GET", "/v1/ping", "", ""); a.status < 500 {
			t.Errorf("status %d with ErrorRate 1", a.status)
		}
		f.sb.SetFaults(Faults{})
		if a := f.do(t, "GET", "/v1/ping", "", ""); a.status != 200 {
			t.Errorf("status %d without faults", a.status)
		}
	})
}

func TestRecordsAndAdminEndpoints(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.ErrorRate = 0.5
	f := newFixture(t, cfg)
	f.sb.SetFaults(Faults{})
	f.post(t, tokA, "1001", "cancel", `{"order":[{"id":3,"reason":"no stock"}]}`)
	f.do(t, "GET", "/v1/me", "wrong", "")

	a := f.do(t, "GET", "/_sandbox/operations", "", "")
	var ops struct {
		Operations []RecordedOperation `json:"operations"`
	}
	if err := json.Unmarshal([]byte(a.body), &ops); err != nil || len(ops.Operations) != 1 {
		t.Fatalf("operations: %v %s", err, a.body)
	}
	op := ops.Operations[0]
	if op.StoreID != 1001 || op.Operation != "cancel" || string(op.Entry) != `{"id":3,"reason":"no stock"}` || op.BatchID == "" || op.TicketID == "" {
		t.Errorf("recorded %+v", op)
	}
	for _, k := range []string{`"storeId":1001`, `"operation":"cancel"`, `"order":{"id":3`, `"batchId"`, `"ticketId"`, `"time"`} {
		if !strings.Contains(a.body, k) {
			t.Errorf("operations JSON lacks %s: %s", k, a.body)
		}
	}

	reqs := f.sb.Requests()
	if len(reqs) != 2 || reqs[0].Status != 202 || reqs[0].Method != "POST" || reqs[1].Status != 403 || reqs[1].Path != "/v1/me" {
		t.Errorf("requests = %+v", reqs)
	}
	if a := f.do(t, "GET", "/_sandbox/requests", "", ""); !strings.Contains(a.body, `"status":403`) {
		t.Errorf("/_sandbox/requests: %s", a.body)
	}

	// Faults: read, merge a partial update, refuse a bad one.
	if a := f.do(t, "PUT", "/_sandbox/faults", "", `{"errorRate":0.25,"latency":"5ms","rateLimit":"4/1s"}`); a.status != 200 {
		t.Fatalf("PUT faults: %d %s", a.status, a.body)
	}
	want := Faults{ErrorRate: 0.25, Latency: 5 * time.Millisecond, RateLimit: Rate{4, time.Second}}
	if diff := cmp.Diff(want, f.sb.Faults()); diff != "" {
		t.Errorf("faults after PUT (-want +got):\n%s", diff)
	}
	if a := f.do(t, "PUT", "/_sandbox/faults", "", `{"stuckRate":0.5}`); a.status != 200 {
		t.Fatalf("PUT faults: %d %s", a.status, a.body)
	}
	want.StuckRate = 0.5
	if diff := cmp.Diff(want, f.sb.Faults()); diff != "" {
		t.Errorf("a partial PUT lost fields (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"errorRate":2}`, `{"latency":"soon"}`, `{"rateLimit":"fast"}`, `{"nope":1}`, `[`} {
		f.do(t, "PUT", "/_sandbox/faults", "", bad).problem(t, 400, "faults")
	}
	if diff := cmp.Diff(want, f.sb.Faults()); diff != "" {
		t.Errorf("a refused PUT changed the faults (-want +got):\n%s", diff)
	}
	if a := f.do(t, "GET", "/_sandbox/faults", "", ""); !strings.Contains(a.body, `"rateLimit":"4/1s"`) || !strings.Contains(a.body, `"latency":"5ms"`) {
		t.Errorf("GET faults: %s", a.body)
	}

	// fail-next over HTTP.
	f.sb.SetFaults(Faults{})
	if a := f.do(t, "POST", "/_sandbox/fail-next", "", `{"statuses":[502]}`); a.status != 204 {
		t.Fatalf("fail-next: %d %s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/v1/ping", "", ""); a.status != 502 {
		t.Errorf("after fail-next: %d", a.status)
	}
	f.do(t, "POST", "/_sandbox/fail-next", "", `{"statuses":[200]}`).problem(t, 400, "not between 400 and 599")

	// Reset forgets everything and restores the configured faults.
	f.sb.AddOrders(1001, Order{ID: 1})
	f.sb.FailNext(500)
	if a := f.do(t, "POST", "/_sandbox/reset", "", ""); a.status != 204 {
		t.Fatalf("reset: %d", a.status)
	}
	if len(f.sb.Operations()) != 0 || len(f.sb.Requests()) != 0 || len(f.sb.Tickets(1001)) != 0 {
		t.Error("reset kept records")
	}
	if f.sb.Faults().ErrorRate != 0.5 {
		t.Errorf("reset faults = %+v, want the configured ones", f.sb.Faults())
	}
	f.sb.SetFaults(Faults{})
	batch := f.post(t, tokA, "1001", "deliver", `{"order":[{"id":2}]}`) // no FailNext left, order 2 not restricted
	if tk, _ := f.tickets(t, tokA, "1001", batch); tk[0]["state"] != StateSucceed {
		t.Errorf("after reset, added orders still restrict the store: %v", tk[0])
	}
	f.do(t, "GET", "/v1/store/1001/ticket?batchId="+ops.Operations[0].BatchID, tokA, "").problem(t, 404, "not found")
}

func TestMePingAuth(t *testing.T) {
	f := newFixture(t, testConfig())
	a := f.do(t, "GET", "/v1/me", tokA, "")
	if a.status != 200 {
		t.Fatalf("me: %d %s", a.status, a.body)
	}
	var me struct {
		ID       int    `json:"id"`
		Login    string `json:"login"`
		Embedded struct {
			Store []struct {
				ID      int64                        `json:"id"`
				Name    string                       `json:"name"`
				Status  string                       `json:"status"`
				Country string                       `json:"country"`
				Links   map[string]map[string]string `json:"_links"`
			} `json:"store"`
		} `json:"_embedded"`
	}
	if err := json.Unmarshal([]byte(a.body), &me); err != nil {
		t.Fatal(err)
	}
	if me.ID != 1 || me.Login != "merchant" || len(me.Embedded.Store) != 2 {
		t.Fatalf("me = %+v", me)
	}
	for i, id := range []int64{1001, 1002} {
		s := me.Embedded.Store[i]
		if s.ID != id || s.Name == "" || s.Status != "active" || s.Country != "FR" ||
			s.Links["order"]["href"] != fmt.Sprintf("/v1/store/%d/order", id) || s.Links["ticket"]["href"] != fmt.Sprintf("/v1/store/%d/ticket", id) {
			t.Errorf("store %d = %+v", i, s)
		}
	}
	if strings.Contains(a.body, tokA) {
		t.Error("/v1/me shows the token")
	}

	p := f.do(t, "GET", "/v1/ping", "", "")
	if ts, _ := p.json(t)["timestamp"].(string); p.status != 200 || !atomRE.MatchString(ts) {
		t.Errorf("ping: %d %s", p.status, p.body)
	}

	ok := f.do(t, "POST", "/v1/auth", "", `{"grant_type":"password","username":"merchant","password":"pw"}`)
	if m := ok.json(t); ok.status != 200 || m["access_token"] != tokA || m["token_type"] != "Bearer" {
		t.Errorf("auth: %d %s", ok.status, ok.body)
	}
	f.do(t, "POST", "/v1/auth", "", `{"grant_type":"password","username":"merchant","password":"bad"}`).problem(t, 403, "Invalid credentials")
	f.do(t, "POST", "/v1/auth", "", `{"grant_type":"password","username":"nobody","password":"pw"}`).problem(t, 403, "Invalid credentials")
	f.do(t, "POST", "/v1/auth", "", `{"grant_type":"client_credentials"}`).problem(t, 400, "grant_type")
	f.do(t, "POST", "/v1/auth", "", `{`).problem(t, 400, "malformed")
}

func TestSeedMakesRunsReproducible(t *testing.T) {
	run := func() []Ticket {
		cfg := testConfig()
		cfg.Faults.TicketFailureRate = 0.5
		f := newFixture(t, cfg)
		for i := range 5 {
			f.post(t, tokA, "1001", "deliver", fmt.Sprintf(`{"order":[{"id":%d},{"id":%d}]}`, 2*i+1, 2*i+2))
		}
		return f.sb.Tickets(1001)
	}
	a, b := run(), run()
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different runs (-first +second):\n%s", diff)
	}
	failed := 0
	for _, tk := range a {
		if tk.State == StateFailed {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Errorf("%d of %d tickets failed under a 0.5 failure rate", failed, len(a))
	}
}

func TestConcurrentOperations(t *testing.T) {
	f := newFixture(t, testConfig())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				f.post(t, tokA, "1001", "deliver", fmt.Sprintf(`{"order":[{"id":%d}]}`, g*100+i+1))
				f.do(t, "GET", "/v1/store/1001/ticket", tokA, "")
			}
		}()
	}
	wg.Wait()
	ops := f.sb.Operations()
	if len(ops) != 80 {
		t.Fatalf("%d operations, want 80", len(ops))
	}
	ids := map[string]bool{}
	for _, op := range ops {
		if ids[op.TicketID] || ids[op.BatchID] {
			t.Fatalf("duplicate id in %+v", op)
		}
		ids[op.TicketID], ids[op.BatchID] = true, true
	}
}
