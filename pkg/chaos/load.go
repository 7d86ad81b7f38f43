package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// A scenario is one way a merchant handles an order, and what Shopping
// Feed must learn of it.
type scenario struct {
	name   string
	weight int
	// steps are the merchant's actions, each after the previous one.
	steps func(rng *rand.Rand, o *Options) []step
}

// step is one action: wait, then change the state or type a tracking number.
type step struct {
	after    time.Duration
	state    uint32 // 0: no state change
	tracking bool   // type the tracking number
}

const (
	stProcessing = shopfixture.StateProcessing
	stShipped    = shopfixture.StateShipped
	stDelivered  = shopfixture.StateDelivered
	stCanceled   = shopfixture.StateCanceled
	stRefunded   = shopfixture.StateRefunded
)

// opOf is the mapping every chaos shop has: stock states to operations.
func opOf(state uint32) string {
	switch state {
	case stShipped:
		return "ship"
	case stDelivered:
		return "deliver"
	case stCanceled:
		return "cancel"
	case stRefunded:
		return "refund"
	}
	return ""
}

func ms(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

var scenarios = []scenario{
	{"ship with tracking", 25, func(rng *rand.Rand, o *Options) []step {
		return []step{{tracking: true}, {after: ms(rng, 0, 500*time.Millisecond), state: stShipped}}
	}},
	{"ship, tracking typed later", 8, func(rng *rand.Rand, o *Options) []step {
		return []step{{state: stShipped}, {after: o.ShipDelay + ms(rng, time.Second, 3*time.Second), tracking: true}}
	}},
	{"ship, never a tracking number", 4, func(rng *rand.Rand, o *Options) []step {
		return []step{{state: stShipped}}
	}},
	{"cancel", 15, func(rng *rand.Rand, o *Options) []step {
		return []step{{state: stCanceled}}
	}},
	{"refund", 6, func(rng *rand.Rand, o *Options) []step {
		return []step{{state: stRefunded}}
	}},
	{"ship, then refund", 6, func(rng *rand.Rand, o *Options) []step {
		return []step{{tracking: true}, {state: stShipped}, {after: o.ShipDelay + ms(rng, 2*time.Second, 6*time.Second), state: stRefunded}}
	}},
	{"shipped by mistake, reverted", 10, func(rng *rand.Rand, o *Options) []step {
		return []step{{tracking: true}, {state: stShipped}, {after: ms(rng, 200*time.Millisecond, o.ShipDelay/3), state: stProcessing}}
	}},
	{"shipped, then canceled before due", 6, func(rng *rand.Rand, o *Options) []step {
		return []step{{state: stShipped}, {after: ms(rng, 200*time.Millisecond, o.ShipDelay/3), state: stCanceled}}
	}},
	{"shipped, then delivered", 15, func(rng *rand.Rand, o *Options) []step {
		return []step{{tracking: true}, {state: stShipped}, {after: o.ShipDelay + ms(rng, 2*time.Second, 6*time.Second), state: stDelivered}}
	}},
	{"processing only", 5, func(rng *rand.Rand, o *Options) []step {
		return []step{{state: stProcessing}}
	}},
}

// order is one order of the run: its plan and what was done.
type order struct {
	id       uint32
	shop     int // index into the shops
	scenario int
	start    time.Duration
	steps    []step
	changes  []change
}

// change is one state change the load generator committed. Before and
// After bound the commit in time; HistoryID is 0 when the commit's outcome
// was unknown (connection lost) and the state was found set afterwards.
type change struct {
	state         uint32
	before, after time.Time
	historyID     uint64
}

// plan assigns every order a scenario and a start time within LoadFor.
func plan(rng *rand.Rand, o *Options, ids [][]uint32) []*order {
	total := 0
	for _, s := range scenarios {
		total += s.weight
	}
	var out []*order
	for shop, list := range ids {
		for _, id := range list {
			pick := rng.IntN(total)
			si := 0
			for pick >= scenarios[si].weight {
				pick -= scenarios[si].weight
				si++
			}
			out = append(out, &order{id: id, shop: shop, scenario: si,
				start: time.Duration(rng.Int64N(int64(o.LoadFor) + 1)), steps: scenarios[si].steps(rng, o)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// loader plays the plans against the shop database as merchants would,
// riding out database restarts: an action is retried until it commits.
type loader struct {
	db     *sql.DB
	fx     *shopfixture.Fixture
	prefix string
	errs   int // transient errors ridden out
	mu     sync.Mutex
}

// run plays every order's plan, each order in its own goroutine (they
// mostly sleep), and returns when all are done or ctx ends.
func (l *loader) run(ctx context.Context, began time.Time, orders []*order) {
	var wg sync.WaitGroup
	for _, o := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !pause.For(ctx, time.Until(began.Add(o.start))) {
				return
			}
			for _, s := range o.steps {
				if s.after > 0 && !pause.For(ctx, s.after) {
					return
				}
				if s.tracking {
					l.retry(ctx, func() error {
						return l.fx.SetTracking(ctx, o.id, "TRK"+strconv.FormatUint(uint64(o.id), 10))
					})
				}
				if s.state != 0 {
					if c, ok := l.changeState(ctx, o.id, s.state); ok {
						o.changes = append(o.changes, c)
					}
				}
			}
		}()
	}
	wg.Wait()
}

func (l *loader) retry(ctx context.Context, f func() error) bool {
	for {
		if err := f(); err == nil {
			return true
		}
		l.mu.Lock()
		l.errs++
		l.mu.Unlock()
		if !pause.For(ctx, 200*time.Millisecond) {
			return false
		}
	}
}

// changeState commits one state change. When an attempt fails with its
// outcome unknown, the order's state is read back before trying again.
func (l *loader) changeState(ctx context.Context, orderID, state uint32) (change, bool) {
	c := change{state: state, before: time.Now()}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			var cur uint32
			err := l.db.QueryRowContext(ctx, "SELECT current_state FROM `"+l.prefix+"orders` WHERE id_order = ?", orderID).Scan(&cur)
			if err == nil && cur == state {
				c.after = time.Now()
				return c, true
			}
		}
		id, err := l.fx.ChangeState(ctx, orderID, state)
		if err == nil {
			c.after, c.historyID = time.Now(), id
			return c, true
		}
		l.mu.Lock()
		l.errs++
		l.mu.Unlock()
		if !pause.For(ctx, 200*time.Millisecond) {
			return c, false
		}
	}
}

// seed creates the shops and their orders: shops[i] gets n/len(shops)
// orders in Payment accepted, created as the order import does.
func seed(ctx context.Context, db *sql.DB, prefix string, o *Options) ([]shopfixture.SFShop, [][]uint32, map[int64]uint32, error) {
	if err := shopfixture.Install(ctx, db, prefix); err != nil {
		return nil, nil, nil, err
	}
	fx := shopfixture.New(db, prefix)
	var shops []shopfixture.SFShop
	for i := range o.Shops {
		id := uint32(1)
		if i > 0 {
			var err error
			if id, err = fx.CreateShop(ctx, 1, fmt.Sprintf("Chaos shop %d", i+1)); err != nil {
				return nil, nil, nil, err
			}
		}
		s, err := fx.EnableShoppingFeed(ctx, id, tokenOf(i), storeOf(i))
		if err != nil {
			return nil, nil, nil, err
		}
		if err := fx.SetStateList(ctx, shopfixture.ShopScope(id), prestashop.KeyDelivered, stDelivered); err != nil {
			return nil, nil, nil, err
		}
		shops = append(shops, s)
	}
	ids := make([][]uint32, len(shops))
	bySF := map[int64]uint32{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				shop := n % len(shops)
				id, err := fx.CreateSFOrder(ctx, shops[shop], int64(900000+n), "amazon")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				ids[shop] = append(ids[shop], id)
				bySF[int64(900000+n)] = id
				mu.Unlock()
			}
		}()
	}
	for n := range o.Orders {
		work <- n
	}
	close(work)
	wg.Wait()
	for i := range ids {
		sort.Slice(ids[i], func(a, b int) bool { return ids[i][a] < ids[i][b] })
	}
	return shops, ids, bySF, firstErr
}

func tokenOf(i int) string { return fmt.Sprintf("chaos-token-%d", i+1) }
func storeOf(i int) string { return strconv.Itoa(3001 + i) }
