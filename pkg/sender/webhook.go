package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
)

// The webhook target: the same claims, delay, current-state rule, retries
// and records as Shopping Feed's, but one signed POST per order and no
// ticket: a 2xx answer is final. One task row per order, claimed while in
// flight, keeps an order's updates in order.

// WebhookPayload is the JSON body the webhook receives.
type WebhookPayload struct {
	// ShopOrderID is the order's reference in the shop.
	ShopOrderID string `json:"shopOrderId"`
	// ExternalOrderID comes from WEBHOOK_EXTERNAL_ID (absent with none).
	ExternalOrderID string `json:"externalOrderId,omitempty"`
	Status          string `json:"status"`
	// PreviousStatus is the mapped name of the state before the current
	// one ("" when that state is not mapped).
	PreviousStatus string `json:"previousStatus"`
	OrderID        uint32 `json:"orderId"`
	ShopID         uint32 `json:"shopId"`
	// ChangedAt is when the order entered its current state (RFC 3339).
	ChangedAt      string `json:"changedAt"`
	Carrier        string `json:"carrier,omitempty"`
	TrackingNumber string `json:"trackingNumber,omitempty"`
	TrackingLink   string `json:"trackingLink,omitempty"`
}

const opWebhook = prestashop.Operation("webhook")

// prepareWebhook builds a claimed webhook task's payload from the order's
// current state and sends it, or settles the task as prepare does.
func (s *Sender) prepareWebhook(ctx context.Context, it *item) outcome {
	it.op = opWebhook
	orderID := it.task.OrderID
	o, sh, bad := s.orderAndShop(ctx, it)
	if bad != nil {
		return *bad
	}
	// The current state, the one before and the change that made it come
	// from one read of order_history, the log PrestaShop appends on every
	// change: orders.current_state read separately may already be a
	// change behind or ahead of it.
	ch, err := s.store.LastChanges(ctx, orderID)
	if err != nil {
		return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
	}
	state := ch.State
	if ch.HistoryID == 0 {
		state = o.CurrentState
	}
	name, ok := sh.Hook.Names[state]
	if !ok {
		st, _ := s.shops.State(ctx, state, o.LangID)
		return s.drop(ctx, it, fmt.Sprintf("current state %q (%d) is not mapped for the webhook: nothing sent", st.Name, state))
	}
	hook := s.cfg.Targets.Hook
	p := WebhookPayload{ShopOrderID: o.Reference, Status: name, OrderID: orderID, ShopID: o.ShopID}
	switch hook.ExternalID {
	case "payment_transaction":
		p.ExternalOrderID, err = s.store.TransactionID(ctx, orderID)
	case "shoppingfeed_id":
		var sf prestashop.SFOrder
		sf, err = s.store.SFOrder(ctx, orderID)
		if errors.Is(err, prestashop.ErrNotFound) {
			err = nil
		}
		p.ExternalOrderID = sf.InternalID
	}
	if err != nil {
		return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
	}
	if hook.ExternalID != "none" && p.ExternalOrderID == "" {
		return s.drop(ctx, it, fmt.Sprintf("order %d has no %s (WEBHOOK_EXTERNAL_ID): webhook update skipped", orderID, hook.ExternalID))
	}
	delivered, err := s.store.WebhookDelivered(ctx, orderID)
	if err != nil {
		return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
	}
	if delivered >= ch.HistoryID {
		// The change that put the order in its current state was
		// delivered already (by an earlier task of this order).
		return s.drop(ctx, it, fmt.Sprintf("webhook: %s already delivered for this change", name))
	}
	it.hookChange = ch.HistoryID
	p.PreviousStatus = sh.Hook.Names[ch.Previous]
	at := ch.At
	offset, err := s.clockOffset(ctx)
	if err != nil {
		return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
	}
	p.ChangedAt = at.Add(-offset).UTC().Format(time.RFC3339)
	if state == sh.Hook.Shipping {
		tr, err := s.store.Tracking(ctx, orderID)
		if err != nil {
			return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
		}
		if tr.Number == "" {
			if waited := it.task.Now.Sub(it.task.UpdateAt); waited < s.cfg.TrackingMaxWait {
				return s.hold(ctx, it, min(s.cfg.TrackingRecheck, s.cfg.TrackingMaxWait-waited), "tracking", "")
			}
			s.log.Warn("shipment sent to the webhook without tracking number", "order_id", orderID)
		}
		p.Carrier, p.TrackingNumber, p.TrackingLink = tr.CarrierName, tr.Number, tr.Link()
	}
	body, err := json.Marshal(p)
	if err != nil {
		return s.fail(ctx, it, "encode webhook payload: "+err.Error())
	}
	s.sends.Add(1)
	go func() {
		defer s.sends.Done()
		defer s.slot("webhook")()
		s.conclude(ctx, it, s.postWebhook(ctx, it, name, body))
	}()
	return takenByBatch()
}

// webhookClient posts updates to the webhook. It follows no redirect: the
// request carries a signature over its body and the receiver's URL is the
// operator's; a 3xx is a refusal like any other 4xx, naming where it
// pointed, rather than the signed update going somewhere else.
func webhookClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// hookError is a webhook answer to retry later.
type hookError struct {
	status int
	wait   time.Duration
	msg    string
}

func (e *hookError) Error() string {
	if e.status == 0 {
		return "webhook: " + e.msg
	}
	return fmt.Sprintf("webhook: HTTP %d: %s", e.status, e.msg)
}

// RetryWait is the wait the receiver asked for (Retry-After).
func (e *hookError) RetryWait() time.Duration { return e.wait }

// postWebhook signs and posts one update and settles its task: 2xx done,
// 408, 429, 5xx and network errors retried with backoff, any other 4xx a
// permanent failure, recorded and reported like a Shopping Feed failure.
func (s *Sender) postWebhook(ctx context.Context, it *item, status string, body []byte) outcome {
	url := s.cfg.Targets.Hook.URL
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		err = s.signer.Sign(req, body)
	}
	if err != nil {
		return s.fail(ctx, it, "build webhook request: "+config.RedactErr(err, url).Error())
	}
	resp, err := s.hookClient.Do(req)
	if err != nil {
		// Go's url.Error names the URL: never its password or query.
		s.m.calls.WithLabelValues(string(opWebhook), "retry").Inc()
		return s.retryHook(ctx, it, &hookError{msg: config.RedactErr(err, url).Error()})
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	code := resp.StatusCode
	s.log.Debug("webhook posted", "order_id", it.task.OrderID, "task_id", it.task.ID, "history", it.task.Last, "status", status, "http", code, "source", it.ev.Source, "subject", it.msg.Subject())
	switch {
	case code >= 200 && code < 300:
		s.m.calls.WithLabelValues(string(opWebhook), "accepted").Inc()
		s.m.sent.WithLabelValues(string(opWebhook)).Inc()
		err := s.store.MarkWebhookDelivered(ctx, it.task.OrderID, it.hookChange, status)
		deleted := false
		if err == nil {
			deleted, err = s.store.DropTask(ctx, it.task, s.instance)
		}
		if err != nil {
			// Delivered, but not recorded: the claim lapses and it may be
			// delivered again; the receiver's nonce check does not stop a
			// fresh signature, so receivers should be idempotent.
			return retryLater("database", err)
		}
		s.processLog(ctx, it.task.OrderID, prestashop.LevelSuccess, fmt.Sprintf("webhook: %s delivered (HTTP %d)", status, code))
		if !deleted {
			// A newer change reached the task meanwhile: send it next.
			return waitFor(it.task, 0, "changed")
		}
		return acked()
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		s.m.calls.WithLabelValues(string(opWebhook), "retry").Inc()
		return s.retryHook(ctx, it, &hookError{status: code, wait: retryAfter(resp.Header.Get("Retry-After")), msg: oneLine(string(snippet))})
	case code >= 300 && code < 400:
		s.m.calls.WithLabelValues(string(opWebhook), "rejected").Inc()
		return s.fail(ctx, it, fmt.Sprintf("webhook answered the %s update of order %d with HTTP %d, a redirect to %.200q: redirects are not followed; set WEBHOOK_URL to the final address",
			status, it.task.OrderID, code, resp.Header.Get("Location")))
	default:
		s.m.calls.WithLabelValues(string(opWebhook), "rejected").Inc()
		return s.fail(ctx, it, fmt.Sprintf("webhook refused the %s update of order %d: HTTP %d: %s", status, it.task.OrderID, code, oneLine(string(snippet))))
	}
}

// retryHook retries an update the receiver did not take.
func (s *Sender) retryHook(ctx context.Context, it *item, cause *hookError) outcome {
	s.log.Warn("send failed, will retry", "orders", 1, "err", cause)
	return s.retry(ctx, it, cause)
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' || c == '\t' {
			b[i] = ' '
		}
	}
	return truncate(string(bytes.TrimSpace(b)), 200)
}

// clockOffset is the database clock's offset from UTC, read once a minute.
func (s *Sender) clockOffset(ctx context.Context) (time.Duration, error) {
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	if !s.clock.read.IsZero() && time.Since(s.clock.read) < time.Minute {
		return s.clock.offset, nil
	}
	off, err := s.store.ClockOffset(ctx)
	if err != nil {
		return 0, err
	}
	s.clock.offset, s.clock.read = off, time.Now()
	return off, nil
}
