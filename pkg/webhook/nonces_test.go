package webhook_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/webhook"
)

func TestMemoryNoncesSeen(t *testing.T) {
	c := newClock(t0)
	s := &webhook.MemoryNonces{Now: c.Now}
	until := t0.Add(time.Minute)
	steps := []struct {
		name  string
		at    time.Time
		nonce string
		want  bool
	}{
		{"first use", t0, "a", false},
		{"reuse", t0.Add(time.Second), "a", true},
		{"another nonce", t0.Add(time.Second), "b", false},
		{"reuse at the last instant", until, "a", true},
		{"after expiry, forgotten", until.Add(time.Nanosecond), "a", false},
	}
	for _, st := range steps {
		c.Set(st.at)
		got, err := s.Seen(st.nonce, until)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Fatalf("%s: Seen(%q) = %v, want %v", st.name, st.nonce, got, st.want)
		}
	}
}

func TestMemoryNoncesPrunes(t *testing.T) {
	c := newClock(t0)
	s := &webhook.MemoryNonces{Now: c.Now}
	// 3000 nonces in three generations expiring a minute apart, added out
	// of order.
	for i := range 3000 {
		if _, err := s.Seen(fmt.Sprint(i), t0.Add(time.Duration(1+i%3)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		at   time.Duration
		want int // after one more Seen, which prunes
	}{
		{30 * time.Second, 3001},
		{90 * time.Second, 2001},
		{150 * time.Second, 1001},
		{210 * time.Second, 1},
		{time.Hour, 1},
	}
	for i, st := range steps {
		c.Set(t0.Add(st.at))
		if _, err := s.Seen(fmt.Sprint("late", i), t0.Add(st.at+time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := s.Len(); got != st.want {
			t.Fatalf("at +%s: Len = %d, want %d", st.at, got, st.want)
		}
	}
}

func TestMemoryNoncesZeroValue(t *testing.T) {
	var s webhook.MemoryNonces
	if seen, _ := s.Seen("x", time.Now().Add(time.Minute)); seen {
		t.Fatal("fresh store has seen x")
	}
	if seen, _ := s.Seen("x", time.Now().Add(time.Minute)); !seen {
		t.Fatal("store forgot x at once")
	}
	if seen, _ := s.Seen("y", time.Now().Add(-time.Minute)); seen {
		t.Fatal("fresh store has seen y")
	}
	if seen, _ := s.Seen("y", time.Now().Add(time.Minute)); seen {
		t.Fatal("a nonce recorded already expired is still remembered")
	}
}

// TestMemoryNoncesConcurrent: of many goroutines offering one nonce, exactly
// one is first.
func TestMemoryNoncesConcurrent(t *testing.T) {
	s := &webhook.MemoryNonces{}
	until := time.Now().Add(time.Hour)
	for n := range 20 {
		var first atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				seen, err := s.Seen(fmt.Sprint("nonce", n), until)
				if err != nil {
					t.Error(err)
				}
				if !seen {
					first.Add(1)
				}
				_ = s.Len()
			})
		}
		wg.Wait()
		if got := first.Load(); got != 1 {
			t.Fatalf("nonce %d: %d goroutines saw it first, want 1", n, got)
		}
	}
}
