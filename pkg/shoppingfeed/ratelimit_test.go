package shoppingfeed

import (
	"context"
	"testing"
	"time"
)

func TestWindowKeepsNPerSpan(t *testing.T) {
	w := &window{n: 3, per: time.Second}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	steps := []struct {
		now, want time.Time
	}{
		{ms(0), ms(0)},
		{ms(10), ms(10)},
		{ms(20), ms(20)},
		{ms(30), ms(1000)}, // 4th waits for the 1st to leave the span
		{ms(40), ms(1010)},
		{ms(1500), ms(1500)},
		{ms(1500), ms(2000)},
		{ms(5000), ms(5000)}, // long idle: no wait
	}
	var booked []time.Time
	for i, s := range steps {
		got := w.reserve(s.now)
		if !got.Equal(s.want) {
			t.Errorf("step %d at %s: booked %s, want %s", i, s.now.Sub(t0), got.Sub(t0), s.want.Sub(t0))
		}
		booked = append(booked, got)
	}
	// The rule itself: no span of 1s holds more than 3 bookings.
	for i := range booked {
		n := 0
		for _, b := range booked {
			if !b.Before(booked[i]) && b.Sub(booked[i]) < time.Second {
				n++
			}
		}
		if n > 3 {
			t.Errorf("%d bookings within 1s of %s", n, booked[i].Sub(t0))
		}
	}
}

func TestLimitersWaitAndCancel(t *testing.T) {
	l := newLimiters(rate{n: 1, per: 200 * time.Millisecond})
	ctx := t.Context()
	if err := l.Wait(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := l.Wait(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("second request waited %s, want ≥ 200ms", d)
	}
	start = time.Now()
	// (Sharing a's budget would wait about 200ms.)
	if err := l.Wait(ctx, "b", false); err != nil || time.Since(start) > 150*time.Millisecond {
		t.Errorf("another token waited %s (%v)", time.Since(start), err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.Wait(cctx, "a", false); err == nil {
		t.Error("wait ignored its context")
	}
	if newLimiters(rate{}) != nil {
		t.Error("an unlimited rate built a limiter")
	}
	var none *limiters
	if err := none.Wait(ctx, "a", false); err != nil {
		t.Error(err)
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{backoffBase: 100 * time.Millisecond, backoffMax: time.Second}
	for n, span := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		lo, hi := span, time.Duration(0)
		for range 200 {
			d := c.backoff(n)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < span/2 || hi > span {
			t.Errorf("retry %d: waits in [%s, %s], want within [%s, %s]", n, lo, hi, span/2, span)
		}
		if hi-lo < span/10 {
			t.Errorf("retry %d: waits in [%s, %s]: no jitter", n, lo, hi)
		}
	}
}
