package shoppingfeed

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Answers as the sandbox writes them, and variants seen in other clients.
const (
	batchBody  = `{"id":"5c8f1e2d3b4a59687766aabb","_links":{"ticket":{"href":"/v1/store/1001/ticket?batchId=5c8f1e2d3b4a59687766aabb"}}}`
	ticketBody = `{"id":"t1","batchId":"b1","state":"failed","payload":{"id":5001,"carrier":"C","trackingNumber":""},` +
		`"scheduledAt":"2026-04-01T10:00:00+00:00","startedAt":"2026-04-01T10:00:01+00:00","finishedAt":"2026-04-01T10:00:02+00:00",` +
		`"result":{"message":"A tracking number is required","data":{"code":42}},"_links":{"self":{"href":"/v1/store/1001/ticket/t1"}}}`
	pageBody = `{"total":3,"limit":2,"pages":2,"page":1,"count":2,"_links":{},` +
		`"_embedded":{"ticket":[{"id":"t1","batchId":"b1","state":"running","payload":{"reference":"AMZ-1","channelName":"amazon"},"scheduledAt":"2026-04-01T10:00:00+00:00","startedAt":"2026-04-01T10:00:01+00:00","finishedAt":null,"result":null},` +
		`{"id":2,"batchId":"b1","state":"succeed","payload":{"id":"77"},"scheduledAt":"2026-04-01T10:00:00.123Z","startedAt":"2026-04-01T12:00:01+0200","finishedAt":"2026-04-01 10:00:05"}]},` +
		`"meta":{"processing":true}}`
	meBody = `{"id":1,"login":"merchant","_links":{"self":{"href":"/v1/me"}},"_embedded":{"store":[` +
		`{"id":1001,"name":"Shop","status":"active","country":"FR","_links":{}},{"id":"1002","name":"Demo","status":"demo","country":"BE"}]}}`
)

func TestDecodeBatch(t *testing.T) {
	b, err := decodeBatch([]byte(batchBody))
	if err != nil {
		t.Fatal(err)
	}
	want := Batch{ID: "5c8f1e2d3b4a59687766aabb", TicketLink: "/v1/store/1001/ticket?batchId=5c8f1e2d3b4a59687766aabb"}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if b, err := decodeBatch([]byte(`{"id":123}`)); err != nil || b.ID != "123" {
		t.Errorf("numeric id: %+v %v", b, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"id":""}`, `{"id":null}`, `[]`, `{"id":{}}`, `<html>`} {
		if _, err := decodeBatch([]byte(bad)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("decodeBatch(%q) err = %v, want ErrMalformedResponse", bad, err)
		}
	}
}

func TestDecodeTicket(t *testing.T) {
	tk, err := decodeTicket([]byte(ticketBody))
	if err != nil {
		t.Fatal(err)
	}
	at := func(s int) time.Time { return time.Date(2026, 4, 1, 10, 0, s, 0, time.UTC) }
	want := Ticket{
		ID: "t1", BatchID: "b1", State: TicketFailed,
		Payload:     TicketPayload{ID: 5001, Raw: json.RawMessage(`{"id":5001,"carrier":"C","trackingNumber":""}`)},
		ScheduledAt: at(0), StartedAt: at(1), FinishedAt: at(2),
		Message: "A tracking number is required", ResultData: json.RawMessage(`{"code":42}`),
	}
	if diff := cmp.Diff(want, tk, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A message that is not a string is kept as its JSON text.
	tk, err = decodeTicket([]byte(`{"id":"x","state":"failed","result":{"message":["a","b"]}}`))
	if err != nil || tk.Message != `["a","b"]` {
		t.Errorf("list message: %q %v", tk.Message, err)
	}
	// A payload that is not an order entry is kept raw.
	tk, err = decodeTicket([]byte(`{"id":"x","state":"succeed","payload":"weird"}`))
	if err != nil || string(tk.Payload.Raw) != `"weird"` || tk.Payload.ID != 0 {
		t.Errorf("odd payload: %+v %v", tk.Payload, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"state":"succeed"}`, `{"id":"x","scheduledAt":"yesterday"}`, `{"id":"x","scheduledAt":12}`, `{"id":"x","state":3}`} {
		if _, err := decodeTicket([]byte(bad)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("decodeTicket(%q) err = %v, want ErrMalformedResponse", bad, err)
		}
	}
}

func TestDecodeTicketPage(t *testing.T) {
	p, err := decodeTicketPage([]byte(pageBody))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Processing || p.Page != 1 || p.Pages != 2 || p.Total != 3 || len(p.Tickets) != 2 {
		t.Fatalf("page = %+v", p)
	}
	t1, t2 := p.Tickets[0], p.Tickets[1]
	if t1.Payload.Reference != "AMZ-1" || t1.Payload.ChannelName != "amazon" || t1.Payload.ID != 0 || !t1.FinishedAt.IsZero() || t1.State != TicketRunning {
		t.Errorf("ticket 1 = %+v", t1)
	}
	if t2.ID != "2" || t2.Payload.ID != 77 {
		t.Errorf("ticket 2 id %q payload id %d", t2.ID, t2.Payload.ID)
	}
	if !t2.ScheduledAt.Equal(time.Date(2026, 4, 1, 10, 0, 0, 123e6, time.UTC)) ||
		!t2.StartedAt.Equal(time.Date(2026, 4, 1, 10, 0, 1, 0, time.UTC)) ||
		!t2.FinishedAt.Equal(time.Date(2026, 4, 1, 10, 0, 5, 0, time.UTC)) {
		t.Errorf("date layouts: %v %v %v", t2.ScheduledAt, t2.StartedAt, t2.FinishedAt)
	}
	if p, err := decodeTicketPage([]byte(`{"_embedded":{"ticket":[]},"meta":{"processing":false}}`)); err != nil || len(p.Tickets) != 0 {
		t.Errorf("empty page: %+v %v", p, err)
	}
	for _, bad := range []string{``, `[]`, `{"_embedded":{"ticket":[{}]}}`, `{"_embedded":{"ticket":{}}}`, `{"pages":"2"}`, `{"meta":{"processing":"yes"}}`} {
		if _, err := decodeTicketPage([]byte(bad)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("decodeTicketPage(%q) err = %v, want ErrMalformedResponse", bad, err)
		}
	}
}

func TestDecodeMe(t *testing.T) {
	me, err := decodeMe([]byte(meBody))
	if err != nil {
		t.Fatal(err)
	}
	want := Me{ID: "1", Login: "merchant", Stores: []Store{
		{ID: "1001", Name: "Shop", Status: StoreActive, Country: "FR"},
		{ID: "1002", Name: "Demo", Status: StoreDemo, Country: "BE"},
	}}
	if diff := cmp.Diff(want, me); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if me, err := decodeMe([]byte(`{"id":1}`)); err != nil || me.Stores == nil || len(me.Stores) != 0 {
		t.Errorf("no store: %+v %v", me, err)
	}
	for _, bad := range []string{``, `{"_embedded":{"store":[{"name":"x"}]}}`, `{"_embedded":{"store":{}}}`} {
		if _, err := decodeMe([]byte(bad)); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("decodeMe(%q) err = %v", bad, err)
		}
	}
}

func TestDecodeProblem(t *testing.T) {
	tests := []struct {
		name, ct, body string
		want           problem
	}{
		{"problem+json", "application/problem+json", `{"type":"http://x","title":"Forbidden","status":403,"detail":"Access denied"}`,
			problem{Type: "http://x", Title: "Forbidden", Detail: "Access denied"}},
		{"plain json with detail", "application/json; charset=utf-8", `{"detail":"bad"}`, problem{Detail: "bad"}},
		{"json without problem fields", "application/json", `{"error":"x"}`, problem{Detail: `{"error":"x"}`}},
		{"html gateway page", "text/html", "<html>\n<body>\n<h1>502 Bad Gateway</h1>\n</body>\n</html>\n",
			problem{Detail: "<html> <body> <h1>502 Bad Gateway</h1> </body> </html>"}},
		{"empty", "", "", problem{}},
		{"control characters", "text/plain", "a\x00b\x1b[31mc\r\nd", problem{Detail: "a b [31mc d"}},
		{"long", "text/plain", strings.Repeat("é", 300), problem{Detail: strings.Repeat("é", 100) + "…"}},
		{"invalid UTF-8", "text/plain", "a\xffb", problem{Detail: "a\uFFFDb"}},
		{"detail not a string", "application/problem+json", `{"detail":{"field":"id"}}`, problem{Detail: `{"field":"id"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, decodeProblem(tt.ct, []byte(tt.body)), cmp.AllowUnexported(problem{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWait(t *testing.T) {
	now := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
		ok      bool
	}{
		{"fractional X-RateLimit-Wait", map[string]string{"X-RateLimit-Wait": "0.734"}, 734 * time.Millisecond, true},
		{"integral", map[string]string{"X-Ratelimit-Wait": "2"}, 2 * time.Second, true},
		{"X-RateLimit-Wait wins", map[string]string{"X-RateLimit-Wait": "0.5", "Retry-After": "10"}, 500 * time.Millisecond, true},
		{"Retry-After seconds", map[string]string{"Retry-After": "3"}, 3 * time.Second, true},
		{"Retry-After date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second, true},
		{"Retry-After date past", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{"bad X-RateLimit-Wait falls back", map[string]string{"X-RateLimit-Wait": "soon", "Retry-After": "1"}, time.Second, true},
		{"negative", map[string]string{"X-RateLimit-Wait": "-1"}, 0, false},
		{"NaN", map[string]string{"X-RateLimit-Wait": "NaN"}, 0, false},
		{"huge is capped", map[string]string{"X-RateLimit-Wait": "1e300"}, maxHeaderWait, true},
		{"infinite is capped", map[string]string{"Retry-After": "+Inf"}, maxHeaderWait, true},
		{"none", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			got, ok := parseWait(h, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseWait = %s %v, want %s %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The fuzz targets check that no answer, however broken, panics a decoder
// or yields a value that breaks the decoders' promises. Their seeds run in
// every go test; go test -fuzz=FuzzX ./shoppingfeed/ explores further.

var jsonSeeds = []string{
	batchBody, ticketBody, pageBody, meBody,
	``, `null`, `{}`, `[]`, `"x"`, `0`, `{"id":1e400}`, `{"id":-0}`, `{"id":"\u0000"}`,
	`{"_embedded":{"ticket":[null]}}`, `{"_embedded":{"store":[null]}}`, `{"payload":{"id":{"id":1}}}`,
	`{"id":"t","scheduledAt":"2026-13-45T99:99:99+00:00"}`, `{"id":"t","result":{"message":null,"data":null}}`,
	`{"id":"t","payload":{"id":"99999999999999999999999"}}`,
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := decodeBatch(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		if b.ID == "" {
			t.Fatal("decoded a batch without id")
		}
	})
}

func FuzzDecodeTicket(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tk, err := decodeTicket(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		if tk.ID == "" {
			t.Fatal("decoded a ticket without id")
		}
		if tk.Payload.ID < 0 {
			t.Fatalf("negative payload id %d", tk.Payload.ID)
		}
		if tk.State.Pending() == tk.State.Resolved() {
			t.Fatalf("state %q is both or neither pending and resolved", tk.State)
		}
	})
}

func FuzzDecodeTicketPage(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeTicketPage(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		for i, tk := range p.Tickets {
			if tk.ID == "" {
				t.Fatalf("ticket %d without id", i)
			}
		}
	})
}

func FuzzDecodeMe(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		me, err := decodeMe(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
			return
		}
		for i, s := range me.Stores {
			if s.ID == "" {
				t.Fatalf("store %d without id", i)
			}
		}
	})
}

func FuzzDecodeProblem(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add("application/problem+json", []byte(s))
	}
	f.Add("text/html", []byte("<html>\x00\xff\xfe</html>"))
	f.Add("application/json", []byte(`{"detail":"`+strings.Repeat("ü", 600)+`"}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		p := decodeProblem(ct, body)
		for _, s := range []string{p.Type, p.Title, p.Detail} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q", s)
			}
			if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\n' }) {
				t.Fatalf("control character in %q", s)
			}
			if len(s) > 500+len("…") {
				t.Fatalf("%d bytes: longer than the cap", len(s))
			}
		}
	})
}

func FuzzParseWait(f *testing.F) {
	for _, s := range [][2]string{{"0.734", ""}, {"", "3"}, {"", "Wed, 01 Apr 2026 10:01:30 GMT"}, {"-1", "NaN"}, {"1e309", ""}, {"0x10", "1_000"}} {
		f.Add(s[0], s[1])
	}
	now := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, xrl, retryAfter string) {
		h := http.Header{}
		h.Set("X-RateLimit-Wait", xrl)
		h.Set("Retry-After", retryAfter)
		d, ok := parseWait(h, now)
		if d < 0 || d > maxHeaderWait || (!ok && d != 0) {
			t.Fatalf("parseWait(%q, %q) = %s %v", xrl, retryAfter, d, ok)
		}
	})
}
