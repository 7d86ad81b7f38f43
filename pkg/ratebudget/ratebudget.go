// Package ratebudget shares each Shopping Feed token's request budget among
// every sender and ticket poller of a deployment, on the broker they
// already use. Shopping Feed allows a token N requests in any span of a
// period (10 per 2 s); N replicas that each paced themselves would send N
// times that.
//
// One key per token in the sfsync_budget KV bucket (broker.BudgetBucket) (named by the token's
// SHA-256, never the token) holds the send times booked for its last N
// requests. A process books the earliest time at or after now that keeps
// "at most N in any span" (the N-th latest booking plus the period), with
// a compare-and-set on the key's revision, then waits until it. Bookings
// are made in non-decreasing order, so the rule holds for every span, not
// only those a booking ends.
//
// Operation POSTs come first. A ticket read gives way while requests are
// queued on the token (its latest booking is in the future, as while a
// backlog drains): it books only once the queue has ended, or after
// ReadGiveWayMax, so POSTs that arrive meanwhile go before it. And a read
// may not take the last ReadReserve slots of a span, so an update that
// arrives behind reads waits at most for those. A 429 from Shopping Feed (another client on the same
// token) pushes every booking of the token past the wait it asked for, in
// every process.
//
// A key found missing (a broker whose store was wiped) starts from what
// the booking process last saw of it, and, when the token was in use
// within the last period, after one more period: Shopping Feed still
// counts the requests of the last period, other processes' included.
//
// The clocks of the processes are taken to agree (NTP) within the margin
// the period is widened by (5 %, 100 ms for 2 s). When the broker cannot be
// reached for Grace, a process paces itself alone with the same rule, and
// says so.
package ratebudget

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/internal/pause"
)

// ReadReserve is how many slots of each span ticket reads leave to POSTs.
const ReadReserve = 2

// ReadGiveWayMax bounds how long a ticket read gives way to the requests
// queued on its token before it queues behind them.
const ReadGiveWayMax = 30 * time.Second

// Budget books requests on the shared budget of each token.
type Budget struct {
	kv  jetstream.KeyValue
	n   int
	per time.Duration
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	local   map[string]*entry // when the broker cannot be reached
	warned  time.Time
	metrics Observer
	// grace is how long bookings wait for the broker to answer again
	// before this process paces alone; down is when it stopped answering
	// (zero while it answers).
	grace time.Duration
	down  time.Time
	// seen is each key's entry as this process last read or wrote it: a
	// key found missing (its store wiped) starts from it, so the bookings
	// made before the wipe still count in their span.
	seen map[string]entry
}

// Grace is how long a booking waits for an unreachable broker (a restart,
// a wiped store being declared again, a reply late on a loaded machine)
// before the process paces its requests alone: N processes pacing alone
// send N times the token's budget, and Shopping Feed answers 429.
const Grace = 10 * time.Second

// Observer is told how each booking went (nil: nothing).
type Observer interface {
	// Booked is called with the wait a booking asked for and its CAS
	// conflicts; shared is false when the broker could not be reached.
	Booked(wait time.Duration, conflicts int, shared bool)
}

// Option changes a Budget built by New.
type Option func(*Budget)

// WithGrace sets how long bookings wait for an unreachable broker before
// the process paces alone (default Grace; 0: at once).
func WithGrace(d time.Duration) Option { return func(b *Budget) { b.grace = d } }

// New returns a Budget of n requests per period for every token, kept in kv.
func New(kv jetstream.KeyValue, n int, per time.Duration, log *slog.Logger, obs Observer, opts ...Option) *Budget {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Budget{kv: kv, n: n, per: per + per/20, log: log, now: time.Now, local: map[string]*entry{}, metrics: obs, grace: Grace,
		seen: map[string]entry{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// entry is a token's budget as the KV value holds it (JSON, for people
// reading it with `nats kv get`).
type entry struct {
	// Times are the booked send times of the last N requests, Unix
	// nanoseconds, oldest first.
	Times []int64 `json:"times"`
	// NotBefore is when the token may send again after a 429.
	NotBefore int64 `json:"not_before,omitempty"`
}

// book takes the earliest slot at or after now for a request (read: a
// ticket read, else a POST) and returns its time.
func (e *entry) book(now time.Time, n int, per time.Duration, read bool) time.Time {
	at := now.UnixNano()
	if e.NotBefore > at {
		at = e.NotBefore
	}
	if k := len(e.Times); k > 0 && e.Times[k-1] > at {
		at = e.Times[k-1]
	}
	limit := n
	if read && n > ReadReserve {
		limit = n - ReadReserve
	}
	if k := len(e.Times); k >= limit {
		if earliest := e.Times[k-limit] + int64(per); earliest > at {
			at = earliest
		}
	}
	e.Times = append(e.Times, at)
	if len(e.Times) > n {
		e.Times = e.Times[len(e.Times)-n:]
	}
	return time.Unix(0, at)
}

// Key is a token's key in the bucket: no secret, the same in every process.
func Key(token config.Secret) string {
	sum := sha256.Sum256([]byte(token.Reveal()))
	return "token_" + hex.EncodeToString(sum[:16])
}

// Wait blocks until token may send one more request: an operation POST
// (write), or a read. It implements shoppingfeed.Limiter.
func (b *Budget) Wait(ctx context.Context, token config.Secret, write bool) error {
	at, err := b.Reserve(ctx, Key(token), !write)
	if err != nil {
		return err
	}
	if !pause.For(ctx, time.Until(at)) {
		return ctx.Err()
	}
	return nil
}

// Reserve books a slot for key and returns when it may be used.
func (b *Budget) Reserve(ctx context.Context, key string, read bool) (time.Time, error) {
	conflicts := 0
	for {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		at, err := b.tryShared(ctx, key, read)
		switch {
		case err == nil:
			b.mu.Lock()
			b.down = time.Time{}
			b.mu.Unlock()
			b.observe(at, conflicts, true)
			return at, nil
		case errors.Is(err, errConflict):
			conflicts++
			continue
		}
		b.mu.Lock()
		if b.down.IsZero() {
			b.down = time.Now()
		}
		waiting := time.Since(b.down) < b.grace
		b.mu.Unlock()
		if waiting {
			// The broker may be back in a moment: the shared budget is
			// worth waiting for.
			if !pause.For(ctx, 200*time.Millisecond) {
				return time.Time{}, ctx.Err()
			}
			continue
		}
		at = b.bookLocal(key, read, func() { b.warn(err) })
		b.observe(at, conflicts, false)
		return at, nil
	}
}

var errConflict = errors.New("budget changed meanwhile")

// tryShared books once on the KV entry; errConflict when another process
// booked meanwhile. A read first gives way while requests are queued (see
// the package comment), looking again every slot's length.
func (b *Budget) tryShared(ctx context.Context, key string, read bool) (time.Time, error) {
	giveWay, since := read, b.now()
	for {
		var at time.Time
		var queued time.Duration
		err := b.change(ctx, key, func(e *entry) bool {
			now := b.now()
			if giveWay {
				if k := len(e.Times); k > 0 && e.Times[k-1] > now.UnixNano() {
					queued = time.Duration(e.Times[k-1] - now.UnixNano())
					return false
				}
			}
			at = e.book(now, b.n, b.per, read)
			return true
		})
		if err != nil || queued == 0 {
			return at, err
		}
		if !pause.For(ctx, min(queued, b.per/time.Duration(max(b.n, 1)))) {
			return time.Time{}, ctx.Err()
		}
		if b.now().Sub(since) >= ReadGiveWayMax {
			giveWay = false
		}
	}
}

// change applies f to key's entry with one compare-and-set, writing it only
// when f says so; errConflict when another process wrote it meanwhile. An
// entry that cannot be read starts afresh rather than stall.
func (b *Budget) change(ctx context.Context, key string, f func(*entry) bool) error {
	kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var e entry
	var rev uint64
	kve, err := b.kv.Get(kctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// New, or lost with a wiped store: what this process last saw of
		// it still holds (empty on a first start). When the token was in
		// use within the last period, the other processes' bookings of that
		// span are lost with it, and Shopping Feed still counts them: the
		// span is waited out once.
		b.mu.Lock()
		last := b.seen[key]
		b.mu.Unlock()
		e = entry{Times: slices.Clone(last.Times), NotBefore: last.NotBefore}
		if k := len(last.Times); k > 0 {
			if now := b.now(); last.Times[k-1] > now.Add(-b.per).UnixNano() {
				e.NotBefore = max(e.NotBefore, now.Add(b.per).UnixNano())
			}
		}
	case err != nil:
		return err
	default:
		rev = kve.Revision()
		if err := json.Unmarshal(kve.Value(), &e); err != nil {
			e = entry{}
		}
	}
	if !f(&e) {
		b.remember(key, e)
		return nil
	}
	val, _ := json.Marshal(e)
	if rev == 0 {
		_, err = b.kv.Create(kctx, key, val)
	} else {
		_, err = b.kv.Update(kctx, key, val, rev)
	}
	if isConflict(err) {
		return errConflict
	}
	if err == nil {
		b.remember(key, e)
	}
	return err
}

func (b *Budget) remember(key string, e entry) {
	b.mu.Lock()
	b.seen[key] = e
	b.mu.Unlock()
}

func isConflict(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// Throttled records a 429 that asked the token to wait: every process's
// next booking for it comes after.
func (b *Budget) Throttled(token config.Secret, wait time.Duration) {
	if wait <= 0 {
		return
	}
	key := Key(token)
	until := b.now().Add(wait).UnixNano()
	b.mu.Lock()
	if e := b.local[key]; e != nil && e.NotBefore < until {
		e.NotBefore = until
	}
	b.mu.Unlock()
	for range 5 {
		err := b.change(context.Background(), key, func(e *entry) bool {
			if e.NotBefore >= until {
				return false
			}
			e.NotBefore = until
			return true
		})
		if !errors.Is(err, errConflict) {
			return
		}
	}
}

// bookLocal books on this process's own copy when the broker cannot be
// reached.
func (b *Budget) bookLocal(key string, read bool, warn func()) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.local[key]
	if e == nil {
		e = &entry{}
		b.local[key] = e
	}
	if now := time.Now(); now.Sub(b.warned) > time.Minute {
		b.warned = now
		warn()
	}
	return e.book(b.now(), b.n, b.per, read)
}

func (b *Budget) warn(err error) {
	b.log.Warn("shared rate budget unreachable: this process paces its requests alone until the broker answers", "err", err)
}

func (b *Budget) observe(at time.Time, conflicts int, shared bool) {
	if b.metrics != nil {
		b.metrics.Booked(max(time.Until(at), 0), conflicts, shared)
	}
}

// String describes the budget for the start-up line.
func (b *Budget) String() string { return fmt.Sprintf("%d/%s shared on the broker", b.n, b.per) }
