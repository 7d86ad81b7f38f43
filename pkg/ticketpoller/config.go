package ticketpoller

import (
	"net/mail"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// Config is the ticket poller's configuration.
type Config struct {
	// Token reads the tickets of batches sent with no shoppingfeed_token
	// row of their own, when the shop has no active token either.
	Token config.Secret `env:"SF_TOKEN"`
	// SettingsTTL is how long a shop's configuration and token are cached.
	SettingsTTL time.Duration `env:"SETTINGS_TTL, default=5s"`
	// MaxAge is how long a ticket may stay pending (or unreadable) before
	// its task is marked failed.
	MaxAge time.Duration `env:"TICKET_MAX_AGE, default=24h"`
	// BackoffMin and BackoffMax bound the wait before a batch is checked
	// again: BackoffMin, doubling, capped at BackoffMax.
	BackoffMin time.Duration `env:"TICKET_BACKOFF_MIN, default=2s"`
	BackoffMax time.Duration `env:"TICKET_BACKOFF_MAX, default=5m"`
	// Concurrency is how many batches one replica checks at once, on each
	// of its two consumers (new batches, re-checks).
	Concurrency int `env:"TICKET_CONCURRENCY, default=16"`
	// CheckTimeout bounds one check's API read, rate-limit waits included.
	CheckTimeout time.Duration `env:"TICKET_CHECK_TIMEOUT, default=2m"`
	// MaxErrors is how many times a check may fail (an error, not a wait)
	// before it goes to the dead-letter stream; 0 means 20.
	MaxErrors int `env:"MESSAGE_MAX_ERRORS, default=20"`

	// ReportInterval is how often new failures are mailed.
	ReportInterval time.Duration `env:"REPORT_INTERVAL, default=15m"`
	// ReportMaxRows caps the failures in one mail; the rest follow in the
	// next report.
	ReportMaxRows int `env:"REPORT_MAX_ROWS, default=500"`
	// SMTP is where reports are sent; unset, reports go to the log.
	SMTP SMTPURL `env:"SMTP_URL"`
	// SMTPTimeout bounds one mail's delivery.
	SMTPTimeout time.Duration `env:"SMTP_TIMEOUT, default=30s"`
	// ReportTo overrides the shop's PS_SHOP_EMAIL (comma-separated list).
	ReportTo string `env:"REPORT_TO"`
	// ReportFrom is the sender address; required with SMTP_URL.
	ReportFrom string `env:"REPORT_FROM"`
}

// Validate checks the values and the rules that span them.
func (c Config) Validate() error {
	if c.MaxAge <= 0 {
		return config.Invalid("TICKET_MAX_AGE", "must be positive")
	}
	if c.BackoffMin <= 0 {
		return config.Invalid("TICKET_BACKOFF_MIN", "must be positive")
	}
	if c.BackoffMax < c.BackoffMin {
		return config.Invalid("TICKET_BACKOFF_MAX", "%s is shorter than TICKET_BACKOFF_MIN (%s)", c.BackoffMax, c.BackoffMin)
	}
	if c.Concurrency < 1 || c.Concurrency > 1000 {
		return config.Invalid("TICKET_CONCURRENCY", "%d is not between 1 and 1000", c.Concurrency)
	}
	if c.CheckTimeout < time.Second {
		return config.Invalid("TICKET_CHECK_TIMEOUT", "%s is shorter than 1s", c.CheckTimeout)
	}
	if c.ReportInterval <= 0 {
		return config.Invalid("REPORT_INTERVAL", "must be positive")
	}
	if c.ReportMaxRows < 1 || c.ReportMaxRows > 10000 {
		return config.Invalid("REPORT_MAX_ROWS", "%d is not between 1 and 10000", c.ReportMaxRows)
	}
	if c.SMTPTimeout <= 0 {
		return config.Invalid("SMTP_TIMEOUT", "must be positive")
	}
	if c.ReportTo != "" {
		if _, err := mail.ParseAddressList(c.ReportTo); err != nil {
			return config.Invalid("REPORT_TO", "not a list of mail addresses: %v", err)
		}
	}
	if c.ReportFrom != "" {
		if _, err := mail.ParseAddress(c.ReportFrom); err != nil {
			return config.Invalid("REPORT_FROM", "not a mail address: %v", err)
		}
	}
	if c.SMTP.Set() && c.ReportFrom == "" {
		return config.Invalid("REPORT_FROM", "required when SMTP_URL is set")
	}
	return nil
}

// backoff is the wait before re-check n (n ≥ 1): BackoffMin·2ⁿ⁻¹, capped.
func (c Config) backoff(n uint32) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 40 {
		return c.BackoffMax
	}
	d := c.BackoffMin << (n - 1)
	if d <= 0 || d > c.BackoffMax {
		return c.BackoffMax
	}
	return d
}

func (c Config) maxErrors() int {
	if c.MaxErrors <= 0 {
		return 20
	}
	return c.MaxErrors
}
