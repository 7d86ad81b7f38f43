package shoppingfeed

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// Config configures a Client. Load it with config.Load; a Config built in
// code may leave BaseURL, Timeout, RateLimit and MaxOrdersPerRequest empty to
// get their defaults. MaxRetries 0 means one attempt and no retry.
type Config struct {
	// BaseURL is the API's root, without /v1 (point it at sfsandbox in tests
	// and demos).
	BaseURL string `env:"SF_API_URL, default=https://api.shopping-feed.com"`
	// Timeout bounds one attempt (connect, send, read the whole response).
	Timeout time.Duration `env:"SF_TIMEOUT, default=10s"`
	// RateLimit is "N/period" requests per token, e.g. "10/2s"; a bare
	// period is seconds ("10/2"). "none" turns the client-side limiter off.
	RateLimit string `env:"SF_RATE_LIMIT, default=10/2s"`
	// MaxRetries is how many times one call is retried after its first
	// attempt (429, 5xx, network errors, timeouts).
	MaxRetries int `env:"SF_MAX_RETRIES, default=3"`
	// MaxOrdersPerRequest caps the orders of one operation POST.
	MaxOrdersPerRequest int `env:"SF_MAX_ORDERS_PER_REQUEST, default=100"`
}

// Defaults of the fields whose zero value is not meaningful.
const (
	DefaultBaseURL             = "https://api.shopping-feed.com"
	DefaultTimeout             = 10 * time.Second
	DefaultRateLimit           = "10/2s"
	DefaultMaxOrdersPerRequest = 100
)

// withDefaults fills the fields a Config literal may leave empty.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RateLimit == "" {
		c.RateLimit = DefaultRateLimit
	}
	if c.MaxOrdersPerRequest == 0 {
		c.MaxOrdersPerRequest = DefaultMaxOrdersPerRequest
	}
	return c
}

// Validate checks every field and names the variable at fault. Empty fields
// are checked with their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config.Invalid("SF_API_URL", "%q is not an http(s) URL", config.RedactURL(c.BaseURL))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return config.Invalid("SF_API_URL", "must not carry credentials, a query or a fragment")
	}
	if c.Timeout < 0 {
		return config.Invalid("SF_TIMEOUT", "%s is negative", c.Timeout)
	}
	if _, err := parseRate(c.RateLimit); err != nil {
		return config.Invalid("SF_RATE_LIMIT", "%v", err)
	}
	if c.MaxRetries < 0 || c.MaxRetries > 20 {
		return config.Invalid("SF_MAX_RETRIES", "%d is not between 0 and 20", c.MaxRetries)
	}
	if c.MaxOrdersPerRequest < 1 {
		return config.Invalid("SF_MAX_ORDERS_PER_REQUEST", "%d is not positive", c.MaxOrdersPerRequest)
	}
	return nil
}

// rate is "requests per period"; the zero rate means unlimited.
type rate struct {
	n   int
	per time.Duration
}

func (r rate) unlimited() bool { return r.n == 0 }

// Rate is SF_RATE_LIMIT: n requests per period for each token; n is 0 for
// none.
func (c Config) Rate() (n int, per time.Duration) {
	r, _ := parseRate(c.withDefaults().RateLimit)
	return r.n, r.per
}

// parseRate reads "N/period" ("10/2s", "10/2", "600/1m") or "none".
func parseRate(s string) (rate, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "none") || s == "0" {
		return rate{}, nil
	}
	ns, ps, ok := strings.Cut(s, "/")
	if !ok {
		return rate{}, fmt.Errorf("%q is not N/period (e.g. 10/2s) or none", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 1 {
		return rate{}, fmt.Errorf("%q: request count must be a positive integer", s)
	}
	ps = strings.TrimSpace(ps)
	var per time.Duration
	if secs, err := strconv.ParseFloat(ps, 64); err == nil {
		per = time.Duration(secs * float64(time.Second))
	} else if per, err = time.ParseDuration(ps); err != nil {
		return rate{}, fmt.Errorf("%q: period must be a duration (2s) or seconds (2)", s)
	}
	if per <= 0 || per > time.Hour {
		return rate{}, fmt.Errorf("%q: period must be positive and at most 1h", s)
	}
	if n > 100000 {
		return rate{}, fmt.Errorf("%q: request count is too large", s)
	}
	return rate{n: n, per: per}, nil
}
