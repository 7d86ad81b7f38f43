package shoppingfeed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", &APIError{Status: 429}, true},
		{"500", &APIError{Status: 500}, true},
		{"503 wrapped", fmt.Errorf("send: %w", &APIError{Status: 503}), true},
		{"400", &APIError{Status: 400}, false},
		{"401", &APIError{Status: 401}, false},
		{"403", &APIError{Status: 403}, false},
		{"404", &APIError{Status: 404}, false},
		{"409", &APIError{Status: 409}, false},
		{"network", &TransportError{Err: io.ErrUnexpectedEOF}, true},
		{"timeout", &TransportError{Timeout: true, Err: context.DeadlineExceeded}, true},
		{"invalid request", invalidf("no order"), false},
		{"malformed answer", fmt.Errorf("x: %w", ErrMalformedResponse), false},
		{"caller canceled", context.Canceled, true},
		{"caller deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"429 then canceled", fmt.Errorf("%w (stopped retrying: %w)", &APIError{Status: 429}, context.Canceled), true},
		{"foreign error", io.EOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestAPIErrorIsAndText(t *testing.T) {
	tests := []struct {
		err              *APIError
		rejected, notFnd bool
		text             string
	}{
		{&APIError{Op: "me", Method: "GET", Path: "/v1/me", Status: 401}, true, false, "shoppingfeed me: GET /v1/me: 401 Unauthorized"},
		{&APIError{Op: "ship", Method: "POST", Path: "/v1/store/1/order/ship", Status: 403, Detail: "denied"}, true, false,
			"shoppingfeed ship: POST /v1/store/1/order/ship: 403 Forbidden: denied"},
		{&APIError{Op: "ticket", Method: "GET", Path: "/t", Status: 404, Title: "Not Found"}, false, true, "shoppingfeed ticket: GET /t: 404 Not Found"},
		{&APIError{Op: "me", Method: "GET", Path: "/v1/me", Status: 429, RetryAfter: 1500 * time.Millisecond, Attempts: 4}, false, false,
			"shoppingfeed me: GET /v1/me: 429 Too Many Requests (retry after 1.5s) (after 4 attempts)"},
		{&APIError{Op: "me", Method: "GET", Path: "/v1/me", Status: 400, Title: "Validation failed"}, false, false,
			"shoppingfeed me: GET /v1/me: 400 Bad Request: Validation failed"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var err error = fmt.Errorf("wrapped: %w", tt.err)
			if errors.Is(err, ErrTokenRejected) != tt.rejected || errors.Is(err, ErrNotFound) != tt.notFnd {
				t.Errorf("Is: rejected %v not found %v", errors.Is(err, ErrTokenRejected), errors.Is(err, ErrNotFound))
			}
			if tt.err.Error() != tt.text {
				t.Errorf("Error() = %q\n          want %q", tt.err.Error(), tt.text)
			}
		})
	}
}
