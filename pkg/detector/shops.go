package detector

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
)

// shopReports reports the problems of each shop the policy reads anew, at
// most once a minute each, to the log and to the back office's process
// log, and keeps the blocked gauge.
type shopReports struct {
	d        *Detector
	mu       sync.Mutex
	reported map[string]time.Time
	tokenOK  map[uint32]bool
}

func newShopReports(d *Detector) *shopReports {
	return &shopReports{d: d, reported: map[string]time.Time{}, tokenOK: map[uint32]bool{}}
}

// loaded is the policy's Loaded hook.
func (c *shopReports) loaded(ctx context.Context, sh *shoppolicy.Shop) {
	d := c.d
	id := sh.ID
	toSF := d.cfg.Targets.ToShoppingFeed()
	if sh.ConfigErr != nil && toSF {
		c.report(ctx, id, "config", "shop configuration cannot be used; changes are kept as tasks until it is fixed: "+sh.ConfigErr.Error())
	}
	label := strconv.FormatUint(uint64(id), 10)
	kind, reason := sh.Hold()
	switch {
	case !toSF:
		// The guard and the sync switch are Shopping Feed's: with only the
		// webhook target they block nothing and are not reported.
		d.m.blocked.WithLabelValues(label).Set(0)
	case kind == shoppolicy.HoldGuard:
		d.m.blocked.WithLabelValues(label).Set(1)
		c.report(ctx, id, "guard", reason)
	case kind == shoppolicy.HoldDisabled:
		d.m.blocked.WithLabelValues(label).Set(1)
		c.once(id, "disabled", func() {
			d.log.Info("order sync disabled for shop; its changes are skipped", "shop_id", id, "key", prestashop.KeySyncEnabled)
		})
	default:
		d.m.blocked.WithLabelValues(label).Set(0)
	}
	if toSF {
		c.checkToken(ctx, id)
	}
}

// report logs a shop's problem, and writes it to the process log, at most
// once a minute.
func (c *shopReports) report(ctx context.Context, shopID uint32, kind, msg string) {
	key := kind + ":" + strconv.FormatUint(uint64(shopID), 10) + ":" + msg
	c.mu.Lock()
	last, seen := c.reported[key]
	if seen && time.Since(last) < time.Minute {
		c.mu.Unlock()
		return
	}
	c.reported[key] = time.Now()
	c.mu.Unlock()
	c.d.log.Error("shop not synchronised", "shop_id", shopID, "reason", msg)
	if err := c.d.store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:detector", Msg: msg, Level: prestashop.LevelError, ObjectName: "Shop", ObjectID: shopID, Session: c.d.instance}); err != nil {
		c.d.log.Warn("write process log", "err", err)
	}
}

func (c *shopReports) once(shopID uint32, kind string, f func()) {
	key := kind + ":" + strconv.FormatUint(uint64(shopID), 10)
	c.mu.Lock()
	_, seen := c.reported[key]
	c.reported[key] = time.Now()
	c.mu.Unlock()
	if !seen {
		f()
	}
}

// checkToken reports once a shop that has no active Shopping Feed token:
// its orders can only be sent with their own token or SF_TOKEN.
func (c *shopReports) checkToken(ctx context.Context, id uint32) {
	c.mu.Lock()
	done := c.tokenOK[id]
	c.tokenOK[id] = true
	c.mu.Unlock()
	if done {
		return
	}
	if _, err := c.d.store.ActiveToken(ctx, id); errors.Is(err, prestashop.ErrNotFound) {
		msg := "shop has no active Shopping Feed token (shoppingfeed_token): its orders are sent with their own token or SF_TOKEN, and fail without one"
		c.d.log.Warn("shop has no token", "shop_id", id)
		_ = c.d.store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:detector", Msg: "shop " + strconv.FormatUint(uint64(id), 10) + ": " + msg, Level: prestashop.LevelError, ObjectName: "Shop", ObjectID: id, Session: c.d.instance})
	}
}
