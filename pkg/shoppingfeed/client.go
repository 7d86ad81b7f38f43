package shoppingfeed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/config"
)

// Client talks to the Shopping Feed API. It is safe for concurrent use; one
// Client per process is enough whatever the number of tokens.
type Client struct {
	cfg      Config
	base     string
	hc       *http.Client
	log      *slog.Logger
	limit    Limiter
	m        *metrics
	pageSize int

	backoffBase, backoffMax time.Duration
	maxWait                 time.Duration
	shared                  Limiter
}

// Option changes a Client built by New.
type Option func(*Client)

// Limiter paces each token's requests to Shopping Feed's budget. Wait
// blocks until token may send one more request (write: an operation POST,
// which comes before reads); Throttled tells it the server answered 429
// asking the token to wait. pkg/ratebudget's Budget shares one budget per
// token among processes; without WithLimiter each client paces itself.
type Limiter interface {
	Wait(ctx context.Context, token config.Secret, write bool) error
	Throttled(token config.Secret, wait time.Duration)
}

// WithLimiter paces requests with l instead of the client's own limiter
// (unless SF_RATE_LIMIT is none, which turns pacing off).
func WithLimiter(l Limiter) Option { return func(c *Client) { c.shared = l } }

// WithHTTPClient sends requests through hc (its Timeout should be zero or
// longer than SF_TIMEOUT, which the client applies to each attempt itself).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithBackoff sets the exponential backoff between retries of a 5xx or a
// network error: the n-th retry waits a random time between half and all of
// min(base·2ⁿ⁻¹, max). Defaults: 250ms and 5s.
func WithBackoff(base, max time.Duration) Option {
	return func(c *Client) { c.backoffBase, c.backoffMax = base, max }
}

// WithMaxWait sets the longest wait a 429 (or 5xx) may ask for that the
// client still honours inside a call; a longer one ends the call at once
// with a Retryable error whose RetryAfter tells the caller. Default 30s.
func WithMaxWait(d time.Duration) Option { return func(c *Client) { c.maxWait = d } }

// WithTicketPageSize sets the page size BatchTickets asks for (default and
// API maximum 200).
func WithTicketPageSize(n int) Option { return func(c *Client) { c.pageSize = n } }

// maxBody caps what the client reads of one answer.
const maxBody = 16 << 20

// New returns a client for cfg. Empty fields of cfg get their defaults; a
// nil log discards; reg, when not nil, receives the client's metrics (a
// registry may serve several clients).
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, _ := parseRate(cfg.RateLimit) // checked by Validate
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("shoppingfeed metrics: %w", err)
	}
	c := &Client{
		cfg:         cfg,
		base:        strings.TrimRight(cfg.BaseURL, "/"),
		log:         log,
		m:           m,
		pageSize:    DefaultTicketPageSize,
		backoffBase: 250 * time.Millisecond,
		backoffMax:  5 * time.Second,
		maxWait:     30 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	switch {
	case r.unlimited():
	case c.shared != nil:
		c.limit = c.shared
	default:
		c.limit = newLimiters(r)
	}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// The SDK sends up to 10 POSTs in parallel; keep their connections.
		t.MaxIdleConnsPerHost = 32
		c.hc = &http.Client{Transport: t}
	}
	// Redirects are never followed: net/http would send the Authorization
	// header again to a redirect on the same host, and the body of a
	// POST again on a 307 or 308. A 3xx is an APIError like any refusal,
	// naming where it pointed. The caller's client is copied, not changed.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	if c.pageSize < 1 || c.pageSize > DefaultTicketPageSize {
		return nil, fmt.Errorf("shoppingfeed: ticket page size %d is not between 1 and %d", c.pageSize, DefaultTicketPageSize)
	}
	if c.backoffBase <= 0 || c.backoffMax < c.backoffBase {
		return nil, fmt.Errorf("shoppingfeed: backoff %s..%s is not increasing and positive", c.backoffBase, c.backoffMax)
	}
	return c, nil
}

// Config returns the client's effective configuration.
func (c *Client) Config() Config { return c.cfg }

// call is one API call, which may take several requests.
type call struct {
	op     string // metric and log label: the operation, "tickets", "me", …
	method string
	path   string // starts with /v1/; segments already escaped
	query  url.Values
	body   []byte
	// token authenticates the call unless anonymous.
	token     config.Secret
	anonymous bool
	// secret is one more value to keep out of errors (a password).
	secret config.Secret
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do runs cl with the client's retries and returns a 2xx answer, or the
// error left when no retry is due.
func (c *Client) do(ctx context.Context, cl call) (response, error) {
	if !cl.anonymous && cl.token == "" {
		return response{}, invalidf("%s: empty token", cl.op)
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var last error
	for attempt := 1; ; attempt++ {
		if !cl.anonymous && c.limit != nil {
			start := time.Now()
			if err := c.limit.Wait(ctx, cl.token, cl.method != http.MethodGet); err != nil {
				return response{}, c.stopped(cl, last, err)
			}
			c.m.limitWait.Observe(time.Since(start).Seconds())
		}
		hooks, _ := ctx.Value(sendHooksKey{}).(SendHooks)
		if hooks.Before != nil {
			if err := hooks.Before(ctx); err != nil {
				return response{}, err
			}
		}
		res, err := c.attempt(ctx, cl, target)
		var wait time.Duration
		var reason string
		switch {
		case err != nil:
			var te *TransportError
			if !errors.As(err, &te) {
				return response{}, err
			}
			te.Attempts = attempt
			if ctx.Err() != nil {
				return response{}, te
			}
			if cl.method != http.MethodGet && te.MayHaveArrived {
				// An operation may have been applied although no answer
				// came (Shopping Feed processes what it received even when
				// the client gave up): not sent again blindly. The caller
				// finds out first.
				return response{}, te
			}
			last, reason, wait = te, "network", c.backoff(attempt)
		case res.status >= 200 && res.status < 300:
			return res, nil
		default:
			ae := c.apiError(cl, res, attempt)
			if ae.Status != http.StatusTooManyRequests && ae.Status < 500 {
				return response{}, ae
			}
			if hooks.Refused != nil {
				hooks.Refused(ctx)
			}
			last, reason = ae, "server_error"
			if ae.Status == http.StatusTooManyRequests {
				reason = "throttled"
				if c.limit != nil && !cl.anonymous {
					c.limit.Throttled(cl.token, ae.RetryAfter)
				}
			}
			if ae.RetryAfter > 0 {
				wait = ae.RetryAfter
			} else {
				wait = c.backoff(attempt)
			}
		}
		if attempt > c.cfg.MaxRetries || wait > c.maxWait {
			return response{}, last
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return response{}, last
		}
		c.m.retries.WithLabelValues(cl.op, reason).Inc()
		c.log.Warn("shoppingfeed request retrying", "operation", cl.op, "method", cl.method, "path", cl.path,
			"attempt", attempt, "wait", wait, "err", last)
		if err := sleep(ctx, wait); err != nil {
			return response{}, c.stopped(cl, last, err)
		}
	}
}

type sendHooksKey struct{}

// SendHooks are run by a call made under WithSendHooks, as its requests
// go: an Operate that may reach Shopping Feed is recorded there, at the
// moment it may, and forgotten when Shopping Feed refused it.
type SendHooks struct {
	// Before runs just before each request leaves, once the rate limiter
	// let it through. An error ends the call before that request is
	// sent, and the call returns it as it is.
	Before func(context.Context) error
	// Refused runs when a request was answered 429 or 5xx: applied
	// nothing, as the client takes it (it sends such a request again
	// itself), before the call waits to retry or returns.
	Refused func(context.Context)
}

// WithSendHooks returns a context under which calls run h.
func WithSendHooks(ctx context.Context, h SendHooks) context.Context {
	return context.WithValue(ctx, sendHooksKey{}, h)
}

// stopped is the error of a call whose context ended between requests.
func (c *Client) stopped(cl call, last, ctxErr error) error {
	if last != nil {
		return fmt.Errorf("%w (stopped retrying: %w)", last, ctxErr)
	}
	return fmt.Errorf("shoppingfeed %s: %s %s: %w", cl.op, cl.method, cl.path, ctxErr)
}

// attempt sends one request within SF_TIMEOUT and reads the whole answer.
// Its error is a *TransportError or ErrMalformedResponse.
func (c *Client) attempt(ctx context.Context, cl call, target string) (response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target, body)
	if err != nil {
		return response{}, invalidf("%s: %v", cl.op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sfsync")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !cl.anonymous {
		req.Header.Set("Authorization", "Bearer "+cl.token.Reveal())
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(res.Body, maxBody+1))
		_ = res.Body.Close()
	}
	elapsed := time.Since(start)
	c.m.duration.WithLabelValues(cl.op).Observe(elapsed.Seconds())
	if err != nil {
		timedOut := ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isNetTimeout(err))
		label := "error"
		if timedOut {
			label = "timeout"
			err = fmt.Errorf("no answer within %s (SF_TIMEOUT): %w", c.cfg.Timeout, unwrapURL(err))
		} else {
			err = unwrapURL(err)
		}
		c.m.requests.WithLabelValues(cl.op, label).Inc()
		c.log.Debug("shoppingfeed request", "operation", cl.op, "method", cl.method, "path", cl.path,
			"status", label, "duration", elapsed, "err", err)
		return response{}, &TransportError{Op: cl.op, Method: cl.method, Path: cl.path, Timeout: timedOut, Err: err, MayHaveArrived: !isDialError(err)}
	}
	c.m.requests.WithLabelValues(cl.op, strconv.Itoa(res.StatusCode)).Inc()
	c.log.Debug("shoppingfeed request", "operation", cl.op, "method", cl.method, "path", cl.path,
		"status", res.StatusCode, "duration", elapsed)
	if len(b) > maxBody {
		return response{}, fmt.Errorf("%w: %s %s: answer larger than %d bytes", ErrMalformedResponse, cl.method, cl.path, maxBody)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func (c *Client) apiError(cl call, res response, attempt int) *APIError {
	p := decodeProblem(res.header.Get("Content-Type"), res.body)
	ae := &APIError{
		Op: cl.op, Method: cl.method, Path: cl.path, Status: res.status,
		Title: p.Title, Detail: p.Detail, Type: p.Type, Attempts: attempt,
	}
	// A server that echoes what it was sent must not leak it to logs.
	for _, s := range []config.Secret{cl.token, cl.secret} {
		if len(s) >= 4 {
			ae.Title = strings.ReplaceAll(ae.Title, s.Reveal(), "[redacted]")
			ae.Detail = strings.ReplaceAll(ae.Detail, s.Reveal(), "[redacted]")
			ae.Type = strings.ReplaceAll(ae.Type, s.Reveal(), "[redacted]")
		}
	}
	if res.status >= 300 && res.status < 400 {
		ae.Detail = "redirect not followed (it would carry the token)"
		if loc := res.header.Get("Location"); loc != "" {
			ae.Detail = fmt.Sprintf("redirect to %.200q not followed (it would carry the token)", loc)
		}
	}
	if res.status == http.StatusTooManyRequests || res.status >= 500 {
		if d, ok := parseWait(res.header, time.Now()); ok {
			ae.RetryAfter = d
		}
	}
	return ae
}

// backoff is the wait before retry n (n ≥ 1): equal jitter over an
// exponentially growing, capped span.
func (c *Client) backoff(n int) time.Duration {
	d := c.backoffMax
	if n-1 < 30 {
		d = min(c.backoffBase<<(n-1), c.backoffMax)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// isDialError reports whether err came from making the connection: the
// request never left.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURL drops *url.Error's "Post \"http://…\":" prefix, which repeats
// what TransportError says.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
