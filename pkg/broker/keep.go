package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/internal/pause"
)

// Keeper declares the streams, consumers and buckets again when the broker
// has lost them: a server whose store was wiped (a lost volume, a node
// replaced) restarts empty on the same address, and nothing else would
// re-create what the workers publish to, consume from and keep their lease
// and checkpoint in. Every worker process runs one (pkg/service starts
// it); Declare is idempotent, so several keepers declaring at once converge.
//
// Run checks every Interval; Nudge asks for a check now, for a worker that
// was just told a stream, consumer or bucket does not exist.
type Keeper struct {
	js  jetstream.JetStream
	s   Settings
	log *slog.Logger
	// Interval is how often Run checks (default 5 s).
	Interval time.Duration
	nudge    chan struct{}
}

// NewKeeper returns a keeper of what Declare declares with s.
func NewKeeper(js jetstream.JetStream, s Settings, log *slog.Logger) *Keeper {
	return &Keeper{js: js, s: s, log: log, Interval: 5 * time.Second, nudge: make(chan struct{}, 1)}
}

// Nudge asks for a check as soon as possible. It never blocks, and a nil
// keeper ignores it (a worker built without one).
func (k *Keeper) Nudge() {
	if k == nil {
		return
	}
	select {
	case k.nudge <- struct{}{}:
	default:
	}
}

// Run checks and re-declares until ctx ends; it always returns nil.
func (k *Keeper) Run(ctx context.Context) error {
	every := k.Interval
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-k.nudge:
			// Every worker of every process may nudge at the same moment
			// (they all saw the same restart): spread the checks a little,
			// and let one round answer a burst of nudges.
			if !pause.For(ctx, rand.N(200*time.Millisecond)) {
				return nil
			}
		}
		k.check(ctx, every)
	}
}

// check re-declares what is missing, retrying a failed declaration a few
// times before the next tick.
func (k *Keeper) check(ctx context.Context, every time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, every)
	defer cancel()
	missing, err := Missing(cctx, k.js)
	if err != nil || len(missing) == 0 {
		// Unreachable or still starting: the next check tells.
		if err != nil && ctx.Err() == nil {
			k.log.Debug("broker check failed", "err", err)
		}
		return
	}
	for wait := 200 * time.Millisecond; ; wait *= 2 {
		err = Declare(cctx, k.js, k.s)
		if err == nil {
			k.log.Warn("broker lost its streams; declared again", "missing", strings.Join(missing, ","))
			return
		}
		if !pause.For(cctx, wait) {
			if ctx.Err() == nil {
				k.log.Warn("broker lost its streams; declaring them again failed, retrying", "missing", strings.Join(missing, ","), "err", err)
			}
			return
		}
	}
}

// Missing names the streams, consumers and buckets Declare declares that
// the broker does not have. An error means the broker could not tell (not
// connected, JetStream not ready yet).
func Missing(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	d := declared(Settings{})
	var missing []string
	for _, st := range d.streams {
		s, err := js.Stream(ctx, st.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, st.Name)
			for _, c := range d.consumers {
				if c.stream == st.Name {
					missing = append(missing, st.Name+"/"+c.cfg.Durable)
				}
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", st.Name, err)
		}
		for _, c := range d.consumers {
			if c.stream != st.Name {
				continue
			}
			_, err := s.Consumer(ctx, c.cfg.Durable)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				missing = append(missing, st.Name+"/"+c.cfg.Durable)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("consumer %s on %s: %w", c.cfg.Durable, st.Name, err)
			}
		}
	}
	for _, b := range d.buckets {
		_, err := js.KeyValue(ctx, b.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			missing = append(missing, b.Bucket)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", b.Bucket, err)
		}
	}
	return missing, nil
}

// IsGone reports whether err says a stream, consumer or bucket does not
// exist (or nothing answers for it): what the keeper re-declares.
func IsGone(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}
