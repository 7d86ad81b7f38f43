package ticketpoller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

func validConfig() Config {
	return Config{SettingsTTL: 5 * time.Second, MaxAge: 24 * time.Hour, BackoffMin: 2 * time.Second, BackoffMax: 5 * time.Minute, Concurrency: 16,
		CheckTimeout: 2 * time.Minute, MaxErrors: 20, ReportInterval: 15 * time.Minute,
		ReportMaxRows: 500, SMTPTimeout: 30 * time.Second}
}

func TestConfigValidateNamesTheVariable(t *testing.T) {
	smtpURL := func() SMTPURL {
		var u SMTPURL
		if err := u.UnmarshalText([]byte("smtp://u:p@mail.example:587")); err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantVar string
	}{
		{"valid", func(*Config) {}, ""},
		{"max age", func(c *Config) { c.MaxAge = 0 }, "TICKET_MAX_AGE"},
		{"backoff min", func(c *Config) { c.BackoffMin = 0 }, "TICKET_BACKOFF_MIN"},
		{"backoff max below min", func(c *Config) { c.BackoffMax = time.Second }, "TICKET_BACKOFF_MAX"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "TICKET_CONCURRENCY"},
		{"report interval", func(c *Config) { c.ReportInterval = 0 }, "REPORT_INTERVAL"},
		{"report to", func(c *Config) { c.ReportTo = "not an address" }, "REPORT_TO"},
		{"report from", func(c *Config) { c.ReportFrom = "nope" }, "REPORT_FROM"},
		{"smtp without from", func(c *Config) { c.SMTP = smtpURL() }, "REPORT_FROM"},
		{"smtp with from", func(c *Config) { c.SMTP, c.ReportFrom = smtpURL(), "Shop <sfsync@shop.example>" }, ""},
		{"report to list", func(c *Config) { c.ReportTo = "a@shop.example, B <b@shop.example>" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.wantVar {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.wantVar)
			}
		})
	}
}

func TestSMTPURL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    SMTPURL
		str     string
		wantErr string
	}{
		{"starttls default port", "smtp://mailer:s3cret@mail.example", SMTPURL{Host: "mail.example", Port: 587, User: "mailer", Password: "s3cret"},
			"smtp://mailer:xxxxx@mail.example:587", ""},
		{"implicit tls", "smtps://u%40shop:p%2Fw%3Ad@mail.example:2465", SMTPURL{ImplicitTLS: true, Host: "mail.example", Port: 2465, User: "u@shop", Password: "p/w:d"},
			"smtps://u%40shop:xxxxx@mail.example:2465", ""},
		{"no auth", "smtp://127.0.0.1:2525", SMTPURL{Host: "127.0.0.1", Port: 2525}, "smtp://127.0.0.1:2525", ""},
		{"empty", "", SMTPURL{}, "", ""},
		{"scheme", "http://u:topsecret@mail.example", SMTPURL{}, "", "not smtp or smtps"},
		{"port", "smtp://u:topsecret@mail.example:99999", SMTPURL{}, "", "port"},
		{"path", "smtp://u:topsecret@mail.example/x", SMTPURL{}, "", "no path"},
		{"unparsable", "smtp://u:top secret%zz@mail.example", SMTPURL{}, "", "not a URL"},
		{"no host", "smtp://u:topsecret@:25", SMTPURL{}, "", "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u SMTPURL
			err := u.UnmarshalText([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "SMTP_URL") {
					t.Fatalf("err = %v, want one about %q naming SMTP_URL", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, u); diff != "" {
				t.Fatalf("parsed (-want +got):\n%s", diff)
			}
			if u.String() != tt.str {
				t.Fatalf("String() = %q, want %q", u.String(), tt.str)
			}
			for _, shown := range []string{fmt.Sprint(u), fmt.Sprintf("%+v", struct{ S SMTPURL }{u}), mustJSON(t, struct{ S SMTPURL }{u})} {
				if u.Password != "" && strings.Contains(shown, u.Password.Reveal()) {
					t.Fatalf("the password shows: %s", shown)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBackoffDoublesToTheCap(t *testing.T) {
	c := validConfig()
	var got []time.Duration
	for n := uint32(0); n <= 10; n++ {
		got = append(got, c.backoff(n))
	}
	want := []time.Duration{2 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("backoff (-want +got):\n%s", diff)
	}
	if c.backoff(1000) != 5*time.Minute {
		t.Fatal("a huge attempt must stay at the cap")
	}
}

func TestReportMailHasBothPartsEscaped(t *testing.T) {
	at := time.Date(2026, 3, 4, 15, 4, 5, 0, time.UTC)
	rep := report{Shop: "Boutique Été", More: 3, Failures: []prestashop.Failure{
		{Reference: "XKBKNABJK", Channel: "amazon", MarketplaceRef: "402-1", Operation: "ship", StateName: "Expédié",
			Error: "Tracking <script>alert(1)</script> invalid\nsecond line " + strings.Repeat("long ", 40), FailedAt: at},
		{Reference: "QWERTYUIO", Operation: "", Error: "", FailedAt: at},
	}}
	from := &mail.Address{Name: "sfsync", Address: "sfsync@shop.example"}
	m, err := rep.mail(from, []*mail.Address{{Address: "merchant@shop.example"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := composeMail(m, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("a line of %d bytes breaks RFC 5322", len(line))
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subj != "[Boutique Été] Shopping Feed: 5 order updates failed" {
		t.Fatalf("subject %q (%v)", subj, err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts[strings.Split(p.Header.Get("Content-Type"), ";")[0]] = string(b)
	}
	text, html := parts["text/plain"], parts["text/html"]
	for _, want := range []string{"XKBKNABJK", "amazon", "402-1", "ship", "Expédié", "2026-03-04 15:04:05", "3 more failures"} {
		if !strings.Contains(text, want) || !strings.Contains(html, want) {
			t.Fatalf("a part lacks %q:\n%s\n%s", want, text, html)
		}
	}
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") {
		t.Fatalf("the HTML part does not escape the error:\n%s", html)
	}
	if !strings.Contains(text, "invalid second line") {
		t.Fatalf("a multi-line error breaks the text table:\n%s", text)
	}
}

func TestJudgeMatchesTicketsToTasks(t *testing.T) {
	task := func(id uint64, sfID, ref string) prestashop.TicketTask {
		return prestashop.TicketTask{TaskID: id, OrderID: uint32(id), SFOrderID: sfID, MarketplaceRef: ref, Channel: "amazon", Operation: "ship"}
	}
	byID := func(id, ticket string, st shoppingfeed.TicketState, msg string) shoppingfeed.Ticket {
		return shoppingfeed.Ticket{ID: ticket, State: st, Message: msg, Payload: shoppingfeed.TicketPayload{ID: sfOrderID(id)}}
	}
	byRef := func(ref, ticket string, st shoppingfeed.TicketState) shoppingfeed.Ticket {
		return shoppingfeed.Ticket{ID: ticket, State: st, Payload: shoppingfeed.TicketPayload{Reference: ref, ChannelName: "amazon"}}
	}
	type res struct {
		Task   uint64
		Kind   prestashop.TicketOutcomeKind
		Ticket string
		Label  string
	}
	tests := []struct {
		name      string
		tasks     []prestashop.TicketTask
		sent      []events.BatchOrder
		tickets   []shoppingfeed.Ticket
		age       time.Duration
		want      []res
		unmatched []string
	}{
		{"by id and by reference",
			[]prestashop.TicketTask{task(1, "501", "A-1"), task(2, "", "B-2")}, nil,
			[]shoppingfeed.Ticket{byRef("B-2", "t2", shoppingfeed.TicketFailed), byID("501", "t1", shoppingfeed.TicketSucceed, "")}, 0,
			[]res{{1, prestashop.TicketDone, "t1", "succeed"}, {2, prestashop.TicketFailed, "t2", "failed"}}, nil},
		{"the message says how it was sent",
			[]prestashop.TicketTask{task(1, "501", "A-1")}, []events.BatchOrder{{TaskID: 1, Reference: "A-1", Channel: "amazon"}},
			[]shoppingfeed.Ticket{byRef("A-1", "t1", shoppingfeed.TicketCanceled)}, 0,
			[]res{{1, prestashop.TicketDone, "t1", "canceled"}}, nil},
		{"two orders with one marketplace reference get one ticket each",
			[]prestashop.TicketTask{task(1, "", "DUP"), task(2, "", "DUP")}, nil,
			[]shoppingfeed.Ticket{byRef("DUP", "t1", shoppingfeed.TicketSucceed), byRef("DUP", "t2", shoppingfeed.TicketRunning)}, 0,
			[]res{{1, prestashop.TicketDone, "t1", "succeed"}, {2, prestashop.TicketPending, "t2", ""}}, nil},
		{"a stranger's ticket is unmatched; an order already resolved is not a stranger",
			[]prestashop.TicketTask{task(1, "501", "")}, []events.BatchOrder{{TaskID: 1, SFOrderID: "501"}, {TaskID: 9, SFOrderID: "509"}},
			[]shoppingfeed.Ticket{byID("501", "t1", shoppingfeed.TicketScheduled, ""), byID("509", "t9", shoppingfeed.TicketSucceed, ""), byID("777", "t7", shoppingfeed.TicketSucceed, "")}, 0,
			[]res{{1, prestashop.TicketPending, "t1", ""}}, []string{"t7"}},
		{"no ticket is pending, until too old",
			[]prestashop.TicketTask{task(1, "501", ""), task(2, "502", "")}, nil,
			[]shoppingfeed.Ticket{byID("502", "t2", shoppingfeed.TicketRunning, "")}, 25 * time.Hour,
			[]res{{1, prestashop.TicketFailed, "", "expired"}, {2, prestashop.TicketFailed, "t2", "expired"}}, nil},
		{"a failed ticket without a message",
			[]prestashop.TicketTask{task(1, "501", "")}, nil,
			[]shoppingfeed.Ticket{byID("501", "t1", shoppingfeed.TicketFailed, "")}, 0,
			[]res{{1, prestashop.TicketFailed, "t1", "failed"}}, nil},
		{"an unknown state is pending",
			[]prestashop.TicketTask{task(1, "501", "")}, nil,
			[]shoppingfeed.Ticket{byID("501", "t1", "queued", "")}, 0,
			[]res{{1, prestashop.TicketPending, "t1", ""}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatch(events.Batch{BatchID: "B", Orders: tt.sent}, tt.tasks, time.Now())
			v := judge(b, shoppingfeed.TicketList{Tickets: tt.tickets}, tt.age, 24*time.Hour)
			var got []res
			for _, o := range v.outcomes {
				got = append(got, res{o.TaskID, o.Kind, o.TicketID, o.label})
				if o.Kind == prestashop.TicketFailed && (o.Message == "" || !strings.Contains(o.LogMsg, o.Message)) {
					t.Fatalf("failed outcome %+v has no message in its log line", o)
				}
				if o.Kind == prestashop.TicketDone && !strings.Contains(o.LogMsg, "batch B") {
					t.Fatalf("done outcome %+v: log line without the batch", o)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("outcomes (-want +got):\n%s", diff)
			}
			var un []string
			for _, tk := range v.unmatched {
				un = append(un, tk.ID)
			}
			if diff := cmp.Diff(tt.unmatched, un); diff != "" {
				t.Fatalf("unmatched (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFirstSeenIsTheOlderOfMessageAndRow(t *testing.T) {
	now := time.Now()
	tasks := []prestashop.TicketTask{{TaskID: 1, SinceUpdate: 3 * time.Hour}}
	b := newBatch(events.Batch{BatchID: "B"}, tasks, now)
	if d := now.Sub(b.firstSeen); d != 3*time.Hour {
		t.Fatalf("age %s, want the row's 3h when the message has no first_seen", d)
	}
}

func TestConfigLoadsTheEnvironmentWithDefaults(t *testing.T) {
	var c Config
	err := config.Load(t.Context(), config.MapLookup(map[string]string{
		"SMTP_URL": "smtps://mailer:pw%40x@mail.example", "REPORT_FROM": "sfsync@shop.example", "SF_TOKEN": "tok",
	}), &c)
	if err != nil {
		t.Fatal(err)
	}
	want := validConfig()
	want.Token, want.ReportFrom = "tok", "sfsync@shop.example"
	want.SMTP = SMTPURL{ImplicitTLS: true, Host: "mail.example", Port: 465, User: "mailer", Password: "pw@x"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("loaded config (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
