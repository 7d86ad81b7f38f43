package sfsandbox

import (
	"net/http"
	"testing"
	"time"
)

func TestOrderStatusFollowsSucceededTickets(t *testing.T) {
	cfg := testConfig()
	cfg.ScheduledFor, cfg.RunningFor = time.Second, time.Second
	f := newFixture(t, cfg)
	status := func() string {
		t.Helper()
		a := f.do(t, "GET", "/v1/store/1001/order/501", tokA, "")
		if a.status != http.StatusOK {
			t.Fatalf("GET order: %d %s", a.status, a.body)
		}
		s, _ := a.json(t)["status"].(string)
		return s
	}
	f.post(t, tokA, "1001", "ship", `{"order":[{"id":501,"carrier":"UPS","trackingNumber":"1Z","trackingLink":""}]}`)
	if got := status(); got != OrderWaitingShipment {
		t.Fatalf("while the ship ticket is pending: %s, want %s (a 202 is not applied)", got, OrderWaitingShipment)
	}
	f.clock.Add(3 * time.Second)
	if got := status(); got != OrderShipped {
		t.Fatalf("after the ship ticket succeeded: %s, want %s", got, OrderShipped)
	}
	f.post(t, tokA, "1001", "refund", `{"order":[{"id":501,"refund":{"shipping":false,"products":[{"reference":"SKU-1","quantity":1}]}}]}`)
	f.clock.Add(3 * time.Second)
	if got := status(); got != OrderPartiallyRefunded {
		t.Fatalf("after a partial refund: %s, want %s", got, OrderPartiallyRefunded)
	}
	f.do(t, "GET", "/v1/store/1001/order/999", tokA, "").problem(t, http.StatusNotFound, "Order 999 not found")
	f.do(t, "GET", "/v1/store/2001/order/501", tokA, "").problem(t, http.StatusForbidden, "denied")
}

func TestStrictWindowCountsRefusedRequests(t *testing.T) {
	for _, strict := range []bool{false, true} {
		cfg := testConfig()
		cfg.Faults.RateLimit = Rate{Requests: 2, Per: time.Second}
		cfg.Faults.Strict = strict
		f := newFixture(t, cfg)
		authed := func() int { return f.do(t, "GET", "/v1/store/1001/ticket?batchId=x", tokA, "").status }
		authed()
		authed()
		for range 2 {
			f.clock.Add(300 * time.Millisecond)
			if s := authed(); s != http.StatusTooManyRequests {
				t.Fatalf("strict %v: a request within the span of the first two: %d", strict, s)
			}
		}
		// 1.1 s after the first two: the lenient window admits; the strict
		// one still counts the two refused at 0.3 and 0.6 s.
		f.clock.Add(500 * time.Millisecond)
		s := authed()
		switch {
		case !strict && s == http.StatusTooManyRequests:
			t.Fatalf("lenient window refused a request 1.1 s after the first two")
		case strict && s != http.StatusTooManyRequests:
			t.Fatalf("strict window admitted a request within 1 s of a refused one: %d", s)
		}
	}
}

// TestCountsTellRateLimitFromInjectedFaults: a checker reads how many 429s
// the rate limit refused apart from the 429s and 5xx injected as faults,
// and the counts cover every request, not only the recorded ones.
func TestCountsTellRateLimitFromInjectedFaults(t *testing.T) {
	cfg := testConfig()
	cfg.Faults.RateLimit = Rate{Requests: 2, Per: time.Second}
	cfg.Faults.Strict = true
	f := newFixture(t, cfg)
	get := func() int { return f.do(t, "GET", "/v1/store/1001/ticket?batchId=x", tokA, "").status }
	f.sb.FailNext(http.StatusTooManyRequests, http.StatusServiceUnavailable)
	if s := get(); s != http.StatusTooManyRequests {
		t.Fatalf("injected 429: got %d", s)
	}
	if s := get(); s != http.StatusServiceUnavailable {
		t.Fatalf("injected 503: got %d", s)
	}
	get()
	get()
	if s := get(); s != http.StatusTooManyRequests {
		t.Fatalf("third request in the span: %d, want 429", s)
	}
	want := Counts{Requests: 5, RateLimited: 1, Throttled: 1, Errors: 1}
	if got := f.sb.Counts(); got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	a := f.do(t, "GET", "/_sandbox/counts", "", "")
	if a.status != http.StatusOK || a.json(t)["rateLimited"] != float64(1) || a.json(t)["throttled"] != float64(1) {
		t.Fatalf("GET /_sandbox/counts: %d %s", a.status, a.body)
	}
	f.sb.Reset()
	if got := f.sb.Counts(); got != (Counts{}) {
		t.Fatalf("after a reset: %+v", got)
	}
}
