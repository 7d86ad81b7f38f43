// Package detector tails a shop's order_history the way a replica reads a
// binlog: in id order, from a checkpoint that only moves once JetStream has
// every event before it, remembering the holes a late commit can leave, and
// with one active instance at a time (a KV lease). For each state change of
// a Shopping Feed order it saves the module's task row when the new state is
// mapped, then publishes an OrderStatusChanged event.
package detector

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/targets"
)

// Config is the detector's configuration.
type Config struct {
	PollInterval time.Duration `env:"POLL_INTERVAL, default=200ms"`
	// BatchSize bounds the history rows read per poll.
	BatchSize int           `env:"DETECTOR_BATCH_SIZE, default=5000"`
	GapGrace  time.Duration `env:"GAP_GRACE, default=60s"`
	// WriterCheck closes a gap as soon as no transaction holds its ids (a
	// locking probe, see probe.go) instead of waiting out GapGrace.
	WriterCheck bool `env:"GAP_WRITER_CHECK, default=true"`
	// ShippedDelay overrides SHOPPINGFEED_ORDER_STATUS_TIME_SHIFT when set.
	ShippedDelay  *time.Duration `env:"SHIPPED_DELAY"`
	StartFrom     string         `env:"START_FROM, default=now"`
	SweepInterval time.Duration  `env:"SWEEP_INTERVAL, default=1m"`
	SweepAfter    time.Duration  `env:"SWEEP_AFTER, default=10m"`
	// SettingsTTL is how long a shop's configuration is cached.
	SettingsTTL time.Duration `env:"SETTINGS_TTL, default=5s"`
	// Targets says where updates go (Shopping Feed, a webhook).
	Targets targets.Config
}

// Validate checks the values.
func (c Config) Validate() error {
	if c.PollInterval < time.Millisecond {
		return config.Invalid("POLL_INTERVAL", "%s is too short", c.PollInterval)
	}
	if c.BatchSize < 1 || c.BatchSize > 50000 {
		return config.Invalid("DETECTOR_BATCH_SIZE", "%d is not between 1 and 50000", c.BatchSize)
	}
	if c.GapGrace < 0 {
		return config.Invalid("GAP_GRACE", "must not be negative")
	}
	if c.ShippedDelay != nil && *c.ShippedDelay < 0 {
		return config.Invalid("SHIPPED_DELAY", "must not be negative")
	}
	if _, err := ParseStart(c.StartFrom); err != nil {
		return config.Invalid("START_FROM", "%v", err)
	}
	if c.SweepInterval <= 0 || c.SweepAfter <= 0 {
		return config.Invalid("SWEEP_INTERVAL", "SWEEP_INTERVAL and SWEEP_AFTER must be positive")
	}
	return c.Targets.Validate()
}

// Start is where to begin when there is no checkpoint.
type Start struct {
	// Kind is "now", "beginning", "id" or "time".
	Kind string
	// ID: the first history id to read (Kind "id").
	ID uint64
	// Time: the first change time to read (Kind "time").
	Time time.Time
}

// ParseStart parses now, beginning, id:N or time:RFC3339.
func ParseStart(s string) (Start, error) {
	switch {
	case s == "now" || s == "":
		return Start{Kind: "now"}, nil
	case s == "beginning":
		return Start{Kind: "beginning"}, nil
	case strings.HasPrefix(s, "id:"):
		n, err := strconv.ParseUint(s[3:], 10, 64)
		if err != nil || n == 0 {
			return Start{}, fmt.Errorf("%q: id:N wants a positive order_history id", s)
		}
		return Start{Kind: "id", ID: n}, nil
	case strings.HasPrefix(s, "time:"):
		t, err := time.Parse(time.RFC3339, s[5:])
		if err != nil {
			return Start{}, fmt.Errorf("%q: time:T wants an RFC 3339 time such as 2026-11-22T08:00:00+01:00", s)
		}
		return Start{Kind: "time", Time: t}, nil
	}
	return Start{}, fmt.Errorf("%q is not now, beginning, id:N or time:RFC3339", s)
}
