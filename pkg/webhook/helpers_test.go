package webhook_test

import (
	"sync"
	"time"
)

// testSecret is distinctive so that tests can look for it in every error.
const (
	testKeyID  = "shop-7"
	testSecret = "tS3cr3t-must-never-leak-9f2c"
	testURL    = "http://receiver.test/v1/orders/fulfillment?attempt=2"
	testBody   = `{"shopOrderId":"XKQ-1042","status":"SHIPPED"}`
)

// t0 is the test clock's start.
var t0 = time.UnixMilli(1_700_000_000_123)

// clock is a settable clock safe for concurrent reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
