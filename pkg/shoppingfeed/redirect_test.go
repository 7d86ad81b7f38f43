package shoppingfeed_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// A redirect is not followed, so the token goes nowhere but to
// SF_API_URL: not to another path of the same host (where net/http would
// keep the Authorization header), not to another host, and a POST's body
// is not sent again.
func TestRedirectsAreNotFollowedWithTheToken(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			var elsewhere atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Add(1)
				w.WriteHeader(http.StatusOK)
			}))
			t.Cleanup(other.Close)
			var first, samehost atomic.Int32
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/moved") {
					samehost.Add(1)
					w.WriteHeader(http.StatusOK)
					return
				}
				first.Add(1)
				target := "/moved" + r.URL.Path
				if r.Method == http.MethodPost {
					target = other.URL + r.URL.Path
				}
				http.Redirect(w, r, target, code)
			}))
			t.Cleanup(api.Close)
			c, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: api.URL, Timeout: 2 * time.Second, RateLimit: "none", MaxRetries: 3}, nil, nil,
				shoppingfeed.WithHTTPClient(&http.Client{})) // a caller's client is no way around it
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, meErr := c.Me(ctx, token)
			_, opErr := c.Operate(ctx, token, storeID, shoppingfeed.OpShip, []shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: 1}}})
			for _, err := range []error{meErr, opErr} {
				var ae *shoppingfeed.APIError
				if !errors.As(err, &ae) || ae.Status != code {
					t.Fatalf("err %v, want an APIError with status %d", err, code)
				}
				if !strings.Contains(err.Error(), "redirect to") || !strings.Contains(err.Error(), "not followed") {
					t.Errorf("error does not say the redirect was not followed: %v", err)
				}
				if strings.Contains(err.Error(), string(token)) {
					t.Errorf("error holds the token: %v", err)
				}
			}
			if n := first.Load(); n != 2 {
				t.Errorf("%d requests to the API, want 2 (a redirect is not retried)", n)
			}
			if n := samehost.Load() + elsewhere.Load(); n != 0 {
				t.Fatalf("%d requests followed a redirect", n)
			}
		})
	}
}
