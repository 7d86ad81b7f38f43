package ratebudget_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/ratebudget"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// budgets returns k Budgets of n per period, each on its own connection to
// one broker, as k processes would have.
func budgets(t *testing.T, k, n int, per time.Duration) []*ratebudget.Budget {
	t.Helper()
	b := testenv.NATS(t)
	var out []*ratebudget.Budget
	for i := range k {
		_, js := b.Connect(t)
		if i == 0 {
			if err := broker.Declare(t.Context(), js, broker.Settings{}); err != nil {
				t.Fatal(err)
			}
		}
		kv, err := js.KeyValue(t.Context(), broker.BudgetBucket)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ratebudget.New(kv, n, per, nil, nil))
	}
	return out
}

// book has every budget book count slots at once and returns all the
// booked times, sorted.
func book(t *testing.T, bs []*ratebudget.Budget, key string, count int, read func(i int) bool) []time.Time {
	t.Helper()
	var mu sync.Mutex
	var all []time.Time
	var wg sync.WaitGroup
	for _, b := range bs {
		for i := range count {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at, err := b.Reserve(t.Context(), key, read(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, at)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	return all
}

// spans checks that no span of per holds more than n of times (sorted).
func spans(t *testing.T, times []time.Time, n int, per time.Duration) {
	t.Helper()
	for i := 0; i+n < len(times); i++ {
		if d := times[i+n].Sub(times[i]); d < per {
			t.Fatalf("%d requests within %s (from %s to %s): the budget allows %d per %s", n+1, d, times[i].Format("15:04:05.000"), times[i+n].Format("15:04:05.000"), n, per)
		}
	}
}

func TestReplicasShareOneBudgetPerToken(t *testing.T) {
	const n, per = 10, 2 * time.Second
	bs := budgets(t, 5, n, per)
	times := book(t, bs, ratebudget.Key("token-a"), 40, func(int) bool { return false })
	if len(times) != 200 {
		t.Fatalf("%d bookings, want 200", len(times))
	}
	spans(t, times, n, per)
	// Full use of the budget: the 200th request at 10 per 2.1 s (the period
	// and its 5 % margin) comes 19 spans after the first, give or take the
	// time the bookings themselves took to arrive.
	span := per + per/20
	if d := times[len(times)-1].Sub(times[0]); d > 20*span {
		t.Fatalf("200 requests booked over %s: the budget is not used fully", d)
	}
	// Another token has a budget of its own.
	start := time.Now()
	other := book(t, bs[:1], ratebudget.Key("token-b"), 1, func(int) bool { return false })
	if d := other[0].Sub(start); d > time.Second {
		t.Fatalf("another token's first request waits %s", d)
	}
}

func TestReadsLeaveSlotsToPosts(t *testing.T) {
	const n, per = 10, 2 * time.Second
	bs := budgets(t, 2, n, per)
	key := ratebudget.Key("token-r")
	reads := book(t, bs, key, 20, func(int) bool { return true })
	spans(t, reads, n-ratebudget.ReadReserve, per)
}

// TestReadsGiveWayToQueuedPosts: while POSTs are queued on a token (a
// backlog drains), a ticket read waits for the queue to end, so a POST
// that arrives after the read still goes before it.
func TestReadsGiveWayToQueuedPosts(t *testing.T) {
	const n, per = 3, 600 * time.Millisecond
	bs := budgets(t, 2, n, per)
	key := ratebudget.Key("token-g")
	posts := book(t, bs[:1], key, n+1, func(int) bool { return false }) // the last one queued a span ahead
	if !posts[n].After(time.Now()) {
		t.Fatalf("the %d-th POST was not queued: booked at %s", n+1, posts[n].Format("15:04:05.000"))
	}
	readAt := make(chan time.Time, 1)
	go func() {
		at, err := bs[1].Reserve(t.Context(), key, true)
		if err != nil {
			t.Error(err)
		}
		readAt <- at
	}()
	time.Sleep(50 * time.Millisecond) // the read is waiting
	post, err := bs[0].Reserve(t.Context(), key, false)
	if err != nil {
		t.Fatal(err)
	}
	if read := <-readAt; !read.After(post) {
		t.Fatalf("the read booked %s, before the POST that came after it (%s): it did not give way",
			read.Format("15:04:05.000"), post.Format("15:04:05.000"))
	}
}

func TestAThrottleHoldsEveryReplica(t *testing.T) {
	bs := budgets(t, 2, 10, 2*time.Second)
	before := time.Now()
	bs[0].Throttled("token-t", 3*time.Second)
	at, err := bs[1].Reserve(t.Context(), ratebudget.Key("token-t"), false)
	if err != nil {
		t.Fatal(err)
	}
	if at.Sub(before) < 3*time.Second {
		t.Fatalf("booked %s after a 429 that asked for 3s", at.Sub(before))
	}
}

func TestWithoutTheBrokerAProcessPacesItself(t *testing.T) {
	b := testenv.NATS(t)
	nc, js := b.Connect(t)
	if err := broker.Declare(t.Context(), js, broker.Settings{}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), broker.BudgetBucket)
	if err != nil {
		t.Fatal(err)
	}
	var _ jetstream.KeyValue = kv
	bud := ratebudget.New(kv, 10, 2*time.Second, nil, nil, ratebudget.WithGrace(time.Second))
	nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var times []time.Time
	for range 25 {
		at, err := bud.Reserve(ctx, ratebudget.Key("token-x"), false)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, at)
	}
	spans(t, times, 10, 2*time.Second)
}

// TestABrokerRestartKeepsTheBudgetShared: bookings made while the broker
// restarts wait for it (within the grace) instead of each process pacing
// alone, which would send the token's budget once per process.
func TestABrokerRestartKeepsTheBudgetShared(t *testing.T) {
	b := testenv.NATS(t)
	var bs []*ratebudget.Budget
	for i := range 2 {
		_, js := b.Connect(t)
		if i == 0 {
			if err := broker.Declare(t.Context(), js, broker.Settings{}); err != nil {
				t.Fatal(err)
			}
		}
		kv, err := js.KeyValue(t.Context(), broker.BudgetBucket)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, ratebudget.New(kv, 10, 2*time.Second, nil, nil, ratebudget.WithGrace(time.Minute)))
	}
	b.Stop()
	type booked struct {
		times []time.Time
		err   error
	}
	done := make(chan booked, 1)
	go func() {
		var r booked
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, bud := range bs {
			for range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					at, err := bud.Reserve(t.Context(), ratebudget.Key("token-r"), false)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						r.err = err
					}
					r.times = append(r.times, at)
				}()
			}
		}
		wg.Wait()
		done <- r
	}()
	// Down longer than a booking's 2 s wait for the broker.
	time.Sleep(3 * time.Second)
	b.Restart(false)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	slices.SortFunc(r.times, func(a, b time.Time) int { return a.Compare(b) })
	spans(t, r.times, 10, 2*time.Second)
}

// TestAWipedBudgetKeepsWhatWasBooked: a broker whose store is wiped loses
// the budget's bookings, but Shopping Feed still counts the requests made
// in the last period, by every process. The process that books first after
// the wipe starts from what it last saw, after one more period, so that the
// span holds across the wipe for every process.
func TestAWipedBudgetKeepsWhatWasBooked(t *testing.T) {
	b := testenv.NATS(t)
	var bs []*ratebudget.Budget
	var kv jetstream.KeyValue
	for i := range 2 {
		_, js := b.Connect(t)
		if i == 0 {
			if err := broker.Declare(t.Context(), js, broker.Settings{}); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if kv, err = js.KeyValue(t.Context(), broker.BudgetBucket); err != nil {
			t.Fatal(err)
		}
		bs = append(bs, ratebudget.New(kv, 10, 2*time.Second, nil, nil))
	}
	key := ratebudget.Key("token-w")
	var times []time.Time
	bookOn := func(bud *ratebudget.Budget, n int) {
		t.Helper()
		for range n {
			at, err := bud.Reserve(t.Context(), key, false)
			if err != nil {
				t.Fatal(err)
			}
			times = append(times, at)
		}
	}
	bookOn(bs[0], 5)
	bookOn(bs[1], 5)
	if err := kv.Purge(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	bookOn(bs[0], 5)
	bookOn(bs[1], 5)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	spans(t, times, 10, 2*time.Second)
}
