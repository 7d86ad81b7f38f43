package shoppingfeed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// TestTokenNeverLeaks drives every path (success, rejection, throttling,
// 5xx, timeouts, a server that echoes the Authorization header into its
// error) with a recognisable token, and looks for it in every error, the
// debug log and the metrics.
func TestTokenNeverLeaks(t *testing.T) {
	const secret = "tok-SECRET-4242-do-not-print"
	e := setup(t, func(c *sfsandbox.Config) {
		c.Stores = sfsandbox.Tokens{{Token: secret, StoreIDs: []int64{1001}}}
		c.Accounts = sfsandbox.Accounts{{Username: "merchant", Password: "pw-SECRET-77", Token: secret}}
		c.Faults.ThrottleWait = 10 * time.Millisecond
	})
	h := e.sb.Handler()
	// /echo/ answers every request with its own Authorization header in
	// the problem detail, as a careless server might.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/echo/") {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"title":"Bad %[1]s","detail":"you sent %[1]s","type":"x:%[1]s"}`, r.Header.Get("Authorization"))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	e.sb.URL = front.URL
	e.client(t, func(c *shoppingfeed.Config) {
		c.Timeout = 100 * time.Millisecond
		c.MaxRetries = 1
		c.RateLimit = "50/1s"
	})
	echo, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: front.URL + "/echo", RateLimit: "none", MaxRetries: 0}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	tok := config.Secret(secret)
	ctx := t.Context()
	one := []shoppingfeed.OrderOperation{ship(1)}
	var errs []error
	note := func(err error) { errs = append(errs, err) }

	_, err = e.c.Operate(ctx, tok, storeID, shoppingfeed.OpShip, one)
	if err != nil {
		t.Fatalf("a successful call failed: %v", err)
	}
	_, err = e.c.Me(ctx, tok)
	note(err)
	_, err = e.c.Authenticate(ctx, "merchant", "pw-SECRET-77")
	note(err)
	_, err = e.c.Operate(ctx, tok, "999", shoppingfeed.OpShip, one) // 403
	note(err)
	e.sb.FailNext(429, 429)
	_, err = e.c.Me(ctx, tok)
	note(err)
	e.sb.FailNext(503, 503)
	_, err = e.c.BatchTickets(ctx, tok, storeID, "x")
	note(err)
	e.sb.SetFaults(sfsandbox.Faults{Latency: 150 * time.Millisecond})
	_, err = e.c.Ticket(ctx, tok, storeID, "x")
	note(err)
	e.sb.SetFaults(sfsandbox.Faults{ThrottleWait: 10 * time.Millisecond})
	_, err = echo.Me(ctx, tok)
	note(err)
	var ae *shoppingfeed.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Detail, "[redacted]") {
		t.Errorf("echoing server: err = %v, want its detail with the token redacted", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.c.Me(cctx, tok)
	note(err)
	_, err = e.c.Operate(ctx, tok, storeID, shoppingfeed.OpShip, []shoppingfeed.OrderOperation{{}})
	note(err)

	failures := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		failures++
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, secret) || strings.Contains(s, "pw-SECRET-77") {
				t.Errorf("error shows a secret: %s", s)
			}
		}
	}
	if failures < 7 {
		t.Errorf("only %d calls failed: the test no longer drives the error paths", failures)
	}
	if logs := e.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, "SECRET") {
		t.Errorf("log shows a secret:\n%s", logs)
	} else if !strings.Contains(logs, "retrying") {
		t.Error("no retry was logged: the log check proves nothing")
	}
	var metrics bytes.Buffer
	n, err := testutil.GatherAndCount(e.reg)
	if err != nil || n == 0 {
		t.Fatalf("metrics: %d, %v", n, err)
	}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		fmt.Fprintln(&metrics, mf.String())
	}
	if strings.Contains(metrics.String(), "SECRET") {
		t.Errorf("metrics show the token:\n%s", metrics.String())
	}
	if s := fmt.Sprintf("%v %+v %#v", e.c, e.c, tok); strings.Contains(s, secret) {
		t.Errorf("fmt shows the token: %s", s)
	}
}
