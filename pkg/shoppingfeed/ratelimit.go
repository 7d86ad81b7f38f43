package shoppingfeed

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// limiters holds one sliding-window limiter per token. Tokens are keyed by
// their SHA-256, so the map holds no secret. Shops have a handful of tokens;
// limiters are never evicted.
//
// The window is 5% longer than the configured period: the server counts
// requests when they arrive, and the first request of a span may arrive
// later than the next ones (it opened the connection), which would make a
// window of exactly the period earn 429s.
type limiters struct {
	r  rate
	mu sync.Mutex
	m  map[[sha256.Size]byte]*window
}

func newLimiters(r rate) *limiters {
	if r.unlimited() {
		return nil
	}
	return &limiters{r: r, m: map[[sha256.Size]byte]*window{}}
}

// Wait blocks until the token may send one more request, or ctx ends;
// reads and writes share the window.
func (l *limiters) Wait(ctx context.Context, token config.Secret, _ bool) error {
	if l == nil {
		return nil
	}
	key := sha256.Sum256([]byte(token.Reveal()))
	l.mu.Lock()
	w, ok := l.m[key]
	if !ok {
		w = &window{n: l.r.n, per: l.r.per + l.r.per/20}
		l.m[key] = w
	}
	l.mu.Unlock()
	at := w.reserve(time.Now())
	d := time.Until(at)
	if d <= 0 {
		return nil
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

// Throttled does nothing: the client waits out the 429 itself, and this
// process's window is its own.
func (l *limiters) Throttled(config.Secret, time.Duration) {}

// window allows at most n requests in any span of per: the exact rule
// "10 requests per 2 s" rather than a token bucket's n-burst-plus-refill,
// which can send up to 2n in one span and earn 429s.
type window struct {
	n   int
	per time.Duration

	mu    sync.Mutex
	times []time.Time // reserved send times, oldest first once full (ring)
	next  int
}

// reserve books the earliest send time at or after now that keeps the
// window's rule, and returns it. Bookings are in non-decreasing order.
func (w *window) reserve(now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.times) < w.n {
		at := now
		if k := len(w.times); k > 0 && w.times[k-1].After(at) {
			at = w.times[k-1]
		}
		w.times = append(w.times, at)
		return at
	}
	at := now
	if earliest := w.times[w.next].Add(w.per); earliest.After(at) {
		at = earliest
	}
	w.times[w.next] = at
	w.next = (w.next + 1) % w.n
	return at
}
