package shoppingfeed_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

func TestOrderShowsWhatSucceeded(t *testing.T) {
	e := newEnv(t, func(c *sfsandbox.Config) {
		c.ScheduledFor = 20 * time.Millisecond
		c.RunningFor = 20 * time.Millisecond
	}, nil)
	b, err := e.c.Operate(t.Context(), token, storeID, shoppingfeed.OpCancel, []shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: 6001}}})
	if err != nil {
		t.Fatal(err)
	}
	waitResolved(t, e, b.ID)
	o, err := e.c.Order(t.Context(), token, storeID, 6001)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != shoppingfeed.OrderCancelled || !o.Status.Reflects(shoppingfeed.OpCancel) || o.Status.Reflects(shoppingfeed.OpShip) {
		t.Fatalf("order after a succeeded cancel: %+v", o)
	}
	if _, err := e.c.Order(t.Context(), token, storeID, 6002); !errors.Is(err, shoppingfeed.ErrNotFound) {
		t.Fatalf("an order nothing named: %v, want ErrNotFound", err)
	}
}
