package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/webhook"
)

const hookSecret = "whsec-test-secret"

// receiver is the system the webhook target talks to: it verifies every
// request with pkg/webhook's verifier and records what it accepted.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	verifier *webhook.Verifier
	mu       sync.Mutex
	got      []sender.WebhookPayload
	// answer returns the status for the n-th request (from 0).
	answer func(n int, p sender.WebhookPayload) int
	// body is what it answers with; a small JSON document when nil.
	body []byte
	n    int
	bad  []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, verifier: &webhook.Verifier{Keys: map[string]config.Secret{"shop-key": hookSecret}, Window: 5 * time.Minute, Nonces: &webhook.MemoryNonces{}}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := r.verifier.Verify(req, body); err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, err.Error())
		r.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p sender.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	n := r.n
	r.n++
	code := http.StatusOK
	if r.answer != nil {
		code = r.answer(n, p)
	}
	if code < 300 {
		r.got = append(r.got, p)
	}
	answer := r.body
	r.mu.Unlock()
	if answer == nil {
		answer = []byte(`{"detail":"test answer"}`)
	}
	w.WriteHeader(code)
	_, _ = w.Write(answer)
}

func (r *receiver) payloads(order uint32) []sender.WebhookPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sender.WebhookPayload
	for _, p := range r.got {
		if p.OrderID == order {
			out = append(out, p)
		}
	}
	return out
}

func (r *receiver) requests() int { r.mu.Lock(); defer r.mu.Unlock(); return r.n }

func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("requests failed verification: %v", r.bad)
	}
}

func hookTargets(r *receiver, list, orders, external, mapping string) targets.Config {
	return targets.Config{Targets: list, Hook: targets.WebhookConfig{URL: r.srv.URL + "/v1/orders/fulfillment", Secret: hookSecret, KeyID: "shop-key",
		Orders: orders, ExternalID: external, Timeout: 5 * time.Second, MappingFile: mapping}}
}

func (p *pipeline) plainOrder(tx string) uint32 {
	p.t.Helper()
	id, err := p.fx.CreateOrder(context.Background(), shopfixture.OrderSpec{CarrierID: p.shop.CarrierID, TransactionID: tx})
	if err != nil {
		p.t.Fatal(err)
	}
	return id
}

func TestWebhookPayloadAndMapping(t *testing.T) {
	r := newReceiver(t)
	mapping := filepath.Join(t.TempDir(), "mapping.json")
	if err := os.WriteFile(mapping, []byte(`{"PS_OS_PAYMENT":"ORDERED","3":"FULFILLED","PS_OS_SHIPPING":"SHIPPED","PS_OS_REFUND":"REFUNDED"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := hookTargets(r, "webhook", "all", "payment_transaction", mapping)
	p := newPipeline(t, options{targets: tg})
	cfg := senderConfig()
	cfg.Targets = tg
	p.startSender(cfg, "s1")

	o := p.plainOrder("TX-100") // not a Shopping Feed order: WEBHOOK_ORDERS=all covers it
	p.change(o, shopfixture.StateProcessing)
	p.eventually(5*time.Second, "delivered", func() bool { return len(r.payloads(o)) == 1 })
	got := r.payloads(o)[0]
	ord, _ := p.store.Order(context.Background(), o)
	if got.Status != "FULFILLED" || got.PreviousStatus != "ORDERED" || got.ShopOrderID != ord.Reference || got.ExternalOrderID != "TX-100" || got.ShopID != 1 {
		t.Fatalf("payload %+v", got)
	}
	if _, err := time.Parse(time.RFC3339, got.ChangedAt); err != nil {
		t.Fatalf("changedAt %q: %v", got.ChangedAt, err)
	}
	p.eventually(5*time.Second, "task removed", func() bool { return len(p.tasks(o)) == 0 })
	if p.processLog(o, "%webhook: FULFILLED delivered%") != 1 {
		t.Fatal("no success line in the process log")
	}
	// A state the mapping does not name sends nothing.
	p.change(o, shopfixture.StateCanceled)
	// Refunded is mapped by the file.
	p.change(o, shopfixture.StateRefunded)
	p.eventually(5*time.Second, "refund delivered", func() bool { return len(r.payloads(o)) == 2 })
	time.Sleep(300 * time.Millisecond)
	if ps := r.payloads(o); len(ps) != 2 || ps[1].Status != "REFUNDED" {
		t.Fatalf("payloads %+v", ps)
	}
	// An order without the chosen external id is skipped, and logged.
	bare := p.plainOrder("")
	p.change(bare, shopfixture.StateProcessing)
	p.eventually(5*time.Second, "skip logged", func() bool { return p.processLog(bare, "%no payment_transaction%") == 1 })
	if len(r.payloads(bare)) != 0 {
		t.Fatal("an order without external id was sent")
	}
	r.check()
}

func TestWebhookShipmentCarriesTracking(t *testing.T) {
	r := newReceiver(t)
	tg := hookTargets(r, "webhook", "shoppingfeed", "shoppingfeed_id", "")
	p := newPipeline(t, options{targets: tg, shippedDelay: time.Second})
	cfg := senderConfig()
	cfg.Targets = tg
	p.startSender(cfg, "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateShipped)
	time.Sleep(300 * time.Millisecond)
	if err := p.fx.SetTracking(context.Background(), o, "TRK-9"); err != nil {
		t.Fatal(err)
	}
	p.eventually(6*time.Second, "shipment delivered", func() bool { return len(r.payloads(o)) == 1 })
	got := r.payloads(o)[0]
	if got.Status != "SHIPPED" || got.TrackingNumber != "TRK-9" || got.Carrier != "Colissimo" || !strings.HasSuffix(got.TrackingLink, "TRK-9") || got.ExternalOrderID != fmt.Sprint(sfID) {
		t.Fatalf("payload %+v", got)
	}
	if n := len(p.sent()); n != 0 {
		t.Fatalf("TARGETS=webhook sent %d operations to Shopping Feed", n)
	}
	r.check()
}

func TestWebhookRetriesThenDeliversOnce(t *testing.T) {
	r := newReceiver(t)
	r.answer = func(n int, _ sender.WebhookPayload) int {
		return []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusOK}[min(n, 2)]
	}
	p := startHookPipeline(t, r)
	o := p.plainOrder("")
	p.change(o, shopfixture.StateCanceled)
	p.eventually(10*time.Second, "delivered", func() bool { return len(r.payloads(o)) == 1 })
	time.Sleep(300 * time.Millisecond)
	if r.requests() != 3 || len(r.payloads(o)) != 1 || r.payloads(o)[0].Status != "CANCELLED_MERCHANT" || r.payloads(o)[0].ExternalOrderID != "" {
		t.Fatalf("%d requests, payloads %+v", r.requests(), r.payloads(o))
	}
	p.eventually(5*time.Second, "task removed", func() bool { return len(p.tasks(o)) == 0 })
	r.check()
}

// startHookPipeline runs a sender whose only target is r, for every order,
// with no external id.
func startHookPipeline(t *testing.T, r *receiver) *pipeline {
	t.Helper()
	tg := hookTargets(r, "webhook", "all", "none", "")
	p := newPipeline(t, options{targets: tg})
	cfg := senderConfig()
	cfg.Targets = tg
	p.startSender(cfg, "s1")
	return p
}

func TestWebhookPermanentFailureIsRecorded(t *testing.T) {
	r := newReceiver(t)
	r.answer = func(int, sender.WebhookPayload) int { return http.StatusUnprocessableEntity }
	p := startHookPipeline(t, r)
	o := p.plainOrder("")
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "task failed", func() bool { ts := p.tasks(o); return len(ts) == 1 && ts[0].failed })
	ts := p.tasks(o)
	if ts[0].action != prestashop.ActionWebhook || ts[0].operation != "webhook" || !strings.Contains(ts[0].errMsg, "HTTP 422") {
		t.Fatalf("task %+v", ts[0])
	}
	if p.processLog(o, "%webhook refused%") != 1 {
		t.Fatal("failure not in the process log")
	}
	if r.requests() != 1 {
		t.Fatalf("%d requests for a permanent failure", r.requests())
	}
	r.check()
}

// A refusal whose body is not UTF-8 (a Latin-1 error page) and holds a
// 4-byte character is recorded as the task's failure in the module's utf8
// table, in strict mode, after one request: the outcome's write cannot be
// refused, so the update is not posted again.
func TestWebhookRefusalWithLatin1BodyIsRecordedOnce(t *testing.T) {
	r := newReceiver(t)
	r.answer = func(int, sender.WebhookPayload) int { return http.StatusUnprocessableEntity }
	r.body = []byte("<html>Donn\xe9es \xabinvalides\xbb \xf0\x9f\x93\xa6</html>")
	p := startHookPipeline(t, r)
	o := p.plainOrder("")
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "task failed", func() bool { ts := p.tasks(o); return len(ts) == 1 && ts[0].failed })
	ts := p.tasks(o)
	if !utf8.ValidString(ts[0].errMsg) || !strings.Contains(ts[0].errMsg, "Donn\uFFFDes \uFFFDinvalides\uFFFD \uFFFD") {
		t.Fatalf("stored error %q", ts[0].errMsg)
	}
	if p.processLog(o, "%webhook refused%") != 1 {
		t.Fatal("failure not in the process log")
	}
	if r.requests() != 1 {
		t.Fatalf("%d requests for a permanent failure", r.requests())
	}
	r.check()
}

// TestWebhookKeepsEachOrdersUpdatesInOrder changes orders through several
// states quickly: what an order's receiver sees is always in the order of
// the changes (states may be skipped: the current state wins).
func TestWebhookKeepsEachOrdersUpdatesInOrder(t *testing.T) {
	r := newReceiver(t)
	r.answer = func(n int, _ sender.WebhookPayload) int {
		if n%3 == 1 {
			return http.StatusServiceUnavailable // retries must not reorder
		}
		return http.StatusOK
	}
	tg := hookTargets(r, "webhook", "all", "none", "")
	p := newPipeline(t, options{targets: tg, shippedDelay: time.Second})
	cfg := senderConfig()
	cfg.Targets = tg
	p.startSender(cfg, "s1")
	rank := map[string]int{"ORDERED": 0, "FULFILLED": 1, "SHIPPED": 2, "DELIVERED": 3, "CANCELLED_MERCHANT": 4}
	var orders []uint32
	for range 10 {
		o := p.plainOrder("")
		if err := p.fx.SetTracking(context.Background(), o, "T"); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	for _, st := range []uint32{shopfixture.StateProcessing, shopfixture.StateShipped, shopfixture.StateDelivered} {
		for _, o := range orders {
			p.change(o, st)
		}
		time.Sleep(40 * time.Millisecond)
	}
	p.eventually(15*time.Second, "every order delivered", func() bool {
		for _, o := range orders {
			ps := r.payloads(o)
			if len(ps) == 0 || ps[len(ps)-1].Status != "DELIVERED" {
				return false
			}
		}
		return true
	})
	for _, o := range orders {
		last := -1
		for _, pl := range r.payloads(o) {
			if rank[pl.Status] <= last {
				t.Fatalf("order %d received out of order: %+v", o, r.payloads(o))
			}
			last = rank[pl.Status]
		}
	}
	r.check()
}

func TestBothTargetsAtOnce(t *testing.T) {
	r := newReceiver(t)
	tg := hookTargets(r, "shoppingfeed,webhook", "shoppingfeed", "shoppingfeed_id", "")
	p := newPipeline(t, options{targets: tg})
	cfg := senderConfig()
	cfg.Targets = tg
	p.startSender(cfg, "s1")
	o, sfID := p.order()
	plain := p.plainOrder("TX-9") // not from Shopping Feed: WEBHOOK_ORDERS=shoppingfeed leaves it
	p.change(o, shopfixture.StateCanceled)
	p.change(plain, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "both targets reached", func() bool { return len(p.sent()[sfID]) == 1 && len(r.payloads(o)) == 1 })
	time.Sleep(300 * time.Millisecond)
	if got := r.payloads(o)[0]; got.Status != "CANCELLED_MERCHANT" || got.ExternalOrderID != fmt.Sprint(sfID) {
		t.Fatalf("webhook payload %+v", got)
	}
	if p.sent()[sfID][0].op != "cancel" || len(r.payloads(plain)) != 0 {
		t.Fatalf("sent %v, plain order payloads %v", p.sent()[sfID], r.payloads(plain))
	}
	p.eventually(5*time.Second, "both tasks resolved", func() bool {
		for _, tk := range p.tasks(o) {
			if tk.action == prestashop.ActionWebhook || tk.action == prestashop.ActionSyncStatus {
				return false
			}
		}
		return true
	})
	r.check()
}

// TestWebhookNetworkErrorHidesCredentials: WEBHOOK_URL may carry a user,
// a password and a query-string token. When the receiver cannot be reached,
// Go's url.Error names the URL; what the task, the process log (which the
// merchant reads in the back office) and sfsync status show must hold
// neither the password nor the query string.
func TestWebhookNetworkErrorHidesCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing answers there: a connection refused
	tg := targets.Config{Targets: "webhook", Hook: targets.WebhookConfig{
		URL:    "http://hookuser:pw-HOOK-secret@" + addr + "/v1/in?token=q-HOOK-secret",
		Secret: hookSecret, KeyID: "shop-key", Orders: "all", ExternalID: "none", Timeout: 2 * time.Second}}
	p := newPipeline(t, options{targets: tg})
	cfg := senderConfig()
	cfg.Targets = tg
	cfg.MaxAttempts = 2
	p.startSender(cfg, "s1")
	o := p.plainOrder("")
	p.change(o, shopfixture.StateCanceled)
	// A generous bound: under -race on a loaded machine the two attempts
	// and the detector before them take seconds.
	p.eventually(30*time.Second, "task failed", func() bool { ts := p.tasks(o); return len(ts) == 1 && ts[0].failed })
	msg := p.tasks(o)[0].errMsg
	if !strings.Contains(msg, addr) || !strings.Contains(msg, "refused") {
		t.Fatalf("error %q does not say where and why", msg)
	}
	if strings.Contains(msg, "HOOK-secret") {
		t.Fatalf("error %q shows the URL's password or query string", msg)
	}
	if p.processLog(o, "%HOOK-secret%") != 0 {
		t.Fatal("the process log shows the URL's password or query string")
	}
	if p.processLog(o, "%refused%") == 0 {
		t.Fatal("the failure is not in the process log")
	}
}

// A receiver that answers with a redirect does not get the signed update
// sent somewhere else: the redirect is not followed, and the task fails
// once with a message naming where it pointed.
func TestWebhookRedirectIsNotFollowed(t *testing.T) {
	var elsewhere, asked int32
	var mu sync.Mutex
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		elsewhere++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(other.Close)
	r := newReceiver(t)
	r.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.ReadAll(req.Body) // else the answer may race the body still sent
		mu.Lock()
		asked++
		mu.Unlock()
		http.Redirect(w, req, other.URL+"/stolen", http.StatusTemporaryRedirect)
	})
	p := startHookPipeline(t, r)
	o := p.plainOrder("")
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "task failed", func() bool { ts := p.tasks(o); return len(ts) == 1 && ts[0].failed })
	ts := p.tasks(o)
	if !strings.Contains(ts[0].errMsg, "HTTP 307") || !strings.Contains(ts[0].errMsg, other.URL+"/stolen") || !strings.Contains(ts[0].errMsg, "not followed") {
		t.Fatalf("stored error %q", ts[0].errMsg)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked != 1 || elsewhere != 0 {
		t.Fatalf("%d requests to the webhook, %d to where it redirected; want 1 and 0", asked, elsewhere)
	}
}
