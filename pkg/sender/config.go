// Package sender is the delayed-delivery consumer that sends Shopping Feed
// operations. It takes order-status events from two lanes: changes due now,
// and updates that wait (a shipment's delay, a retry, a tracking number
// still to be typed) on a consumer of their own, so that waiting never holds
// back what is due. When an update is due it claims the order's task row,
// reads the order's current state, maps it through the shop's lists,
// gathers due orders per store and operation into batches, sends them, and
// records each batch id in the task table before it acknowledges anything.
package sender

import (
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/targets"
)

// Modes of SYNC_MODE.
const (
	ModeRealtime = "realtime"
	ModeBatch    = "batch"
)

// Config is the sender's configuration.
type Config struct {
	Mode string `env:"SYNC_MODE, default=realtime"`
	// Linger is how long realtime mode waits for more of what is due when
	// its store and operation had no request within the latency budget: a
	// group goes once none joined it for Linger.
	Linger time.Duration `env:"BATCH_LINGER, default=100ms"`
	// LatencyBudget bounds, in realtime mode, how long a due update waits
	// to share a request: under a steady trickle a store and operation get
	// about one request per budget. 0 means 3×BATCH_LINGER.
	LatencyBudget time.Duration `env:"LATENCY_BUDGET, default=1s"`
	// Interval is how often batch mode sends (or when a batch is full).
	Interval time.Duration `env:"BATCH_INTERVAL, default=1m"`
	// BatchSize overrides SHOPPINGFEED_ORDER_STATUS_MAX_ORDERS (1..200).
	BatchSize       int           `env:"BATCH_SIZE"`
	TrackingMaxWait time.Duration `env:"TRACKING_MAX_WAIT, default=1h"`
	TrackingRecheck time.Duration `env:"TRACKING_RECHECK, default=30s"`
	MaxAttempts     int           `env:"SEND_MAX_ATTEMPTS, default=10"`
	RetryBase       time.Duration `env:"SEND_RETRY_BASE, default=2s"`
	RetryMax        time.Duration `env:"SEND_RETRY_MAX, default=5m"`
	// ClaimTTL is how long a claim on a task keeps other senders off it;
	// claims of work in progress are renewed every third of it, so a
	// sender killed with its orders in hand frees them within ClaimTTL
	// (and its messages come back after the consumers' AckWait, 10 s).
	ClaimTTL time.Duration `env:"CLAIM_TTL, default=10s"`
	// AppliedWait is how long Shopping Feed may take to apply an operation
	// it accepted (its ticket to succeed). An update whose earlier POST's
	// outcome is unknown (a sender that died while the request was out, an
	// answer that could not be read) and that Shopping Feed does not show
	// applied waits until its POST is that old before it is sent again:
	// until then the earlier ticket may still be pending. 0 sends it again
	// at once.
	AppliedWait time.Duration `env:"APPLIED_CHECK_WAIT, default=2m"`
	// Workers per lane prepare messages (database reads) in parallel.
	Workers int `env:"SENDER_WORKERS, default=8"`
	// Concurrency bounds the POSTs in flight per store (the client also
	// paces each token to SF_RATE_LIMIT): a slow or throttled store holds
	// its own slots, never another store's.
	Concurrency int `env:"SEND_CONCURRENCY, default=16"`
	// SFToken and SFStoreID serve orders whose shop has no token row.
	SFToken     config.Secret `env:"SF_TOKEN"`
	SFStoreID   string        `env:"SF_STORE_ID"`
	SettingsTTL time.Duration `env:"SETTINGS_TTL, default=5s"`
	// MaxErrors is how many times the handler may fail on one message (an
	// error, not a hold) before it goes to the dead-letter stream; 0 means
	// DefaultMaxErrors.
	MaxErrors int `env:"MESSAGE_MAX_ERRORS, default=20"`
	// Targets says where updates go (Shopping Feed, a webhook).
	Targets targets.Config
}

// DefaultMaxErrors is MESSAGE_MAX_ERRORS's default.
const DefaultMaxErrors = 20

func (c Config) maxErrors() int {
	if c.MaxErrors <= 0 {
		return DefaultMaxErrors
	}
	return c.MaxErrors
}

// Validate checks the values.
func (c Config) Validate() error {
	switch {
	case c.Mode != ModeRealtime && c.Mode != ModeBatch:
		return config.Invalid("SYNC_MODE", "%q is not realtime or batch", c.Mode)
	case c.Linger < 0 || c.Linger > time.Minute:
		return config.Invalid("BATCH_LINGER", "%s is not between 0 and 1m", c.Linger)
	case c.LatencyBudget != 0 && (c.LatencyBudget < c.Linger || c.LatencyBudget > time.Minute):
		return config.Invalid("LATENCY_BUDGET", "%s is not between BATCH_LINGER (%s) and 1m", c.LatencyBudget, c.Linger)
	case c.Interval < time.Second && c.Mode == ModeBatch:
		return config.Invalid("BATCH_INTERVAL", "%s is shorter than 1s", c.Interval)
	case c.BatchSize < 0 || c.BatchSize > 200:
		return config.Invalid("BATCH_SIZE", "%d is not between 1 and 200", c.BatchSize)
	case c.TrackingMaxWait < 0:
		return config.Invalid("TRACKING_MAX_WAIT", "must not be negative")
	case c.TrackingRecheck < 100*time.Millisecond:
		return config.Invalid("TRACKING_RECHECK", "%s is shorter than 100ms", c.TrackingRecheck)
	case c.MaxAttempts < 1:
		return config.Invalid("SEND_MAX_ATTEMPTS", "must be at least 1")
	case c.RetryBase <= 0 || c.RetryMax < c.RetryBase:
		return config.Invalid("SEND_RETRY_BASE", "SEND_RETRY_BASE must be positive and at most SEND_RETRY_MAX")
	case c.AppliedWait < 0 || c.AppliedWait > time.Hour:
		return config.Invalid("APPLIED_CHECK_WAIT", "%s is not between 0 and 1h", c.AppliedWait)
	case c.ClaimTTL < 5*time.Second:
		return config.Invalid("CLAIM_TTL", "%s is shorter than 5s", c.ClaimTTL)
	case c.Workers < 1 || c.Concurrency < 1:
		return config.Invalid("SENDER_WORKERS", "SENDER_WORKERS and SEND_CONCURRENCY must be at least 1")
	case (c.SFToken == "") != (c.SFStoreID == ""):
		return config.Invalid("SF_TOKEN", "SF_TOKEN and SF_STORE_ID go together")
	}
	return c.Targets.Validate()
}

// budget is the latency budget in force.
func (c Config) budget() time.Duration {
	if c.LatencyBudget > 0 {
		return c.LatencyBudget
	}
	return 3 * c.Linger
}
