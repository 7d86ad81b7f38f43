package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease is leadership held as a key in a KV bucket whose TTL is the lease
// length: acquired with Create, renewed with Update on the revision it holds
// every TTL/3, released with Delete. The holder must stop working as soon as
// Lost is closed: a renewal failed or is overdue, well before the key can
// expire and another process take over. Works on nats-server 2.9 (no
// per-key TTL or expiry notices needed: followers retry Create).
//
// A broker that loses its store loses the key at once, not at expiry: a
// follower may create it in the re-declared bucket while the old holder
// still believes it leads. The old holder stops at its next renewal (the
// bucket is gone, or the revision it holds is not the key's), at the
// latest TTL/2 after its last renewal. A renewal can succeed in the new
// bucket only if the new holder's key happens to sit at the very revision
// the old one held; the new holder's next renewal then fails and it
// stops: either way one holder remains within TTL/2. The detector's
// checkpoint, moved by compare-and-set, fences the overlap further (see
// detector.tail).
type Lease struct {
	kv       jetstream.KeyValue
	key      string
	holder   string
	ttl      time.Duration
	log      *slog.Logger
	revision uint64
	// Keeper, when set, is nudged when the bucket is gone.
	Keeper *Keeper
}

// NewLease returns a lease on key for holder; ttl must equal the bucket's TTL.
func NewLease(kv jetstream.KeyValue, key, holder string, ttl time.Duration, log *slog.Logger) *Lease {
	return &Lease{kv: kv, key: key, holder: holder, ttl: ttl, log: log}
}

// ErrLeaseHeld is returned by TryAcquire while another holder has the lease.
var ErrLeaseHeld = errors.New("lease held by another process")

// TryAcquire takes the lease if nobody holds it.
func (l *Lease) TryAcquire(ctx context.Context) error {
	rev, err := l.kv.Create(ctx, l.key, []byte(l.holder))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrLeaseHeld
	}
	if err != nil {
		return fmt.Errorf("acquire lease %s: %w", l.key, err)
	}
	l.revision = rev
	return nil
}

// Holder returns who holds the lease now, "" if nobody.
func (l *Lease) Holder(ctx context.Context) (string, error) {
	e, err := l.kv.Get(ctx, l.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lease %s: %w", l.key, err)
	}
	return string(e.Value()), nil
}

// Acquire waits until the lease is taken or ctx ends, trying every TTL/4.
func (l *Lease) Acquire(ctx context.Context) error {
	for {
		err := l.TryAcquire(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrLeaseHeld) {
			l.log.Warn("lease acquire failed", "key", l.key, "err", err)
			if IsGone(err) {
				l.Keeper.Nudge()
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(l.ttl / 4):
		}
	}
}

// Hold renews the lease every TTL/3 until ctx ends (then releases it) or it
// is lost (then returns an error). Lost is closed the moment the lease may no
// longer be trusted: a renewal was refused, or no renewal succeeded for TTL/2.
// The holder stops working then, well before the key can expire and another
// process take over.
func (l *Lease) Hold(ctx context.Context, lost chan<- struct{}) error {
	defer close(lost)
	last := time.Now()
	tick := time.NewTicker(l.ttl / 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := l.kv.Delete(rctx, l.key, jetstream.LastRevision(l.revision)); err != nil {
				l.log.Warn("lease release failed", "key", l.key, "err", err)
			}
			return nil
		case <-tick.C:
		}
		since := time.Since(last)
		if since >= l.ttl/2 {
			return fmt.Errorf("lease %s lost: no renewal for %s", l.key, since.Round(time.Millisecond))
		}
		if since < l.ttl/3 {
			continue
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, last.Add(l.ttl/2))
		rev, err := l.kv.Update(rctx, l.key, []byte(l.holder), l.revision)
		cancel()
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("lease %s lost: taken over: %w", l.key, err)
		}
		if IsGone(err) {
			l.Keeper.Nudge()
			// The broker lost the bucket (a wiped store): the key is gone
			// and, once the keeper declares the bucket again, anyone may
			// create it. Stop now rather than at TTL/2.
			return fmt.Errorf("lease %s lost: the bucket is gone: %w", l.key, err)
		}
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("lease renewal failed, retrying", "key", l.key, "err", err)
			}
			continue
		}
		l.revision, last = rev, sent
	}
}
