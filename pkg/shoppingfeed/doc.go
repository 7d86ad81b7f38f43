// Package shoppingfeed is a client of the Shopping Feed order API v1: the
// account's stores (/v1/me), order operations (ship, cancel, refund, deliver,
// accept, refuse, acknowledge, unacknowledge) sent in batches, and the
// asynchronous tickets that report each order's outcome.
//
// The client never drops a rejected request: every failure is an error the
// caller sees. It retries inside one call, within bounds: a 429 waits for
// X-RateLimit-Wait (fractional seconds) or Retry-After; 5xx, network errors
// and per-attempt timeouts back off exponentially with jitter. What is left
// when those retries are spent is classified for the caller:
//
//   - errors.Is(err, ErrTokenRejected): 401 or 403, permanent; the token is
//     bad or does not own the store.
//   - errors.Is(err, ErrNotFound): 404, permanent (an unknown batch or ticket).
//   - errors.Is(err, ErrInvalidRequest): refused before any request was sent
//     (no order identifier, too many orders, unknown operation).
//   - *APIError: any other HTTP error, with the problem+json detail.
//   - Retryable(err): the same call may succeed later (429, 5xx, network,
//     timeouts).
//
// Requests are rate limited per token on the client side (SF_RATE_LIMIT,
// default 10 requests per 2 s, which is what Shopping Feed enforces), so that
// several goroutines sharing a token do not earn 429s.
//
// A token is a config.Secret: it travels only in the Authorization header
// and never appears in a log line, an error string or a metric label.
package shoppingfeed
