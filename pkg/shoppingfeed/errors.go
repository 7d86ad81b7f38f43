package shoppingfeed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

var (
	// ErrTokenRejected is matched by a 401 or 403 answer: the token is
	// invalid, revoked, or does not own the store. Permanent: retrying with
	// the same token cannot help.
	ErrTokenRejected = errors.New("shoppingfeed: token rejected")
	// ErrNotFound is matched by a 404 answer, e.g. a batch or ticket Shopping
	// Feed does not know (any more). Permanent.
	ErrNotFound = errors.New("shoppingfeed: not found")
	// ErrInvalidRequest is matched by a call refused before anything was
	// sent: no order identifier, too many orders, an unknown operation.
	ErrInvalidRequest = errors.New("shoppingfeed: invalid request")
	// ErrMalformedResponse is matched when a successful answer cannot be
	// decoded. It is not retryable: for an operation the batch may exist.
	ErrMalformedResponse = errors.New("shoppingfeed: malformed response")
)

// APIError is an HTTP error answer of the API, after the client's own
// retries when the status was retryable.
type APIError struct {
	// Op names the call ("ship", "tickets", "me", …).
	Op string
	// Method and Path are the request's (the path holds no secret).
	Method, Path string
	Status       int
	// Title, Detail and Type come from the application/problem+json body;
	// Detail holds the start of any other body.
	Title, Detail, Type string
	// RetryAfter is the wait the server asked for (X-RateLimit-Wait or
	// Retry-After), zero when it asked none.
	RetryAfter time.Duration
	// Attempts is how many requests this call made.
	Attempts int
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shoppingfeed %s: %s %s: %d %s", e.Op, e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	} else if e.Title != "" && e.Title != http.StatusText(e.Status) {
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Is makes 401 and 403 match ErrTokenRejected and 404 match ErrNotFound.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrTokenRejected:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// TransportError is a request that got no HTTP answer: connection refused or
// reset, an attempt that timed out, a body cut short.
type TransportError struct {
	Op           string
	Method, Path string
	// Attempts is how many requests this call made.
	Attempts int
	// Timeout is true when the last attempt ran out of SF_TIMEOUT.
	Timeout bool
	// MayHaveArrived is true unless the connection could not be made: the
	// server may have received, and processed, the request. An operation
	// POST that may have arrived is not retried by the client.
	MayHaveArrived bool
	Err            error
}

func (e *TransportError) Error() string {
	s := fmt.Sprintf("shoppingfeed %s: %s %s: %v", e.Op, e.Method, e.Path, e.Err)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

func (e *TransportError) Unwrap() error { return e.Err }

// Retryable reports whether a failed call may succeed if made again later:
// a 429, a 5xx, a network error or a timeout (once the client's own retries
// are spent), or a context that ended (the caller stopped; nothing was
// refused). It is false for nil and for permanent errors: token rejected,
// not found, other 4xx, an invalid request, a malformed answer.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrMalformedResponse) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests || ae.Status >= 500
	}
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// RetryAfter returns how long the server asked the caller to wait, when a
// Retryable error carries such a hint (a 429 whose wait was longer than the
// client would sleep inside a call).
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	return 0, false
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
