package detector

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/targets"
)

// shop is what the detector knows of a shop's configuration.
type shop struct {
	settings prestashop.ShopSettings
	// cfgErr is a configuration the merchant must fix (e.g. a malformed
	// mapping list).
	cfgErr error
	block  prestashop.SyncBlock
	delay  time.Duration
	loaded time.Time
	// hook is the webhook target's mapping for this shop.
	hook targets.ShopMapping
}

// syncs reports whether changes of this shop are handled.
func (s *shop) syncs() bool {
	return !s.block.Blocked() && (s.cfgErr != nil || s.settings.SyncEnabled)
}

// shopCache reads shops' settings at most every SettingsTTL and reports
// their problems at most once a minute each, to the log and to the back
// office's process log.
type shopCache struct {
	d        *Detector
	mu       sync.Mutex
	shops    map[uint32]*shop
	reported map[string]time.Time
	tokenOK  map[uint32]bool
}

func newShopCache(d *Detector) *shopCache {
	return &shopCache{d: d, shops: map[uint32]*shop{}, reported: map[string]time.Time{}, tokenOK: map[uint32]bool{}}
}

func (c *shopCache) get(ctx context.Context, id uint32) (*shop, error) {
	c.mu.Lock()
	sh, ok := c.shops[id]
	c.mu.Unlock()
	if ok && time.Since(sh.loaded) < c.d.cfg.SettingsTTL {
		return sh, nil
	}
	sh, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.shops[id] = sh
	c.mu.Unlock()
	return sh, nil
}

func (c *shopCache) load(ctx context.Context, id uint32) (*shop, error) {
	d := c.d
	sh := &shop{loaded: time.Now()}
	st, err := d.store.Settings(ctx, id)
	var ce *prestashop.ConfigError
	switch {
	case errors.As(err, &ce):
		sh.cfgErr = err
		if d.cfg.Targets.ToShoppingFeed() {
			c.report(ctx, id, "config", "shop configuration cannot be used; changes are kept as tasks until it is fixed: "+err.Error())
		}
	case err != nil:
		return nil, err
	default:
		sh.settings = st
	}
	sh.delay = 5 * time.Minute
	if sh.cfgErr == nil {
		sh.delay = time.Duration(st.TimeShiftMinutes) * time.Minute
	}
	if d.cfg.ShippedDelay != nil {
		// update_at is a DATETIME: whole seconds. Round up, so that a
		// sub-second delay is not truncated to none.
		sh.delay = (*d.cfg.ShippedDelay + time.Second - 1).Truncate(time.Second)
	}
	if sh.block, err = d.store.SyncBlocked(ctx, id); err != nil {
		return nil, err
	}
	label := strconv.FormatUint(uint64(id), 10)
	toSF := d.cfg.Targets.ToShoppingFeed()
	switch {
	case !toSF:
		// The guard and the sync switch are Shopping Feed's: with only the
		// webhook target they block nothing and are not reported.
		d.m.blocked.WithLabelValues(label).Set(0)
	case sh.block.Blocked():
		d.m.blocked.WithLabelValues(label).Set(1)
		c.report(ctx, id, "guard", sh.block.Reason)
	case sh.cfgErr == nil && !st.SyncEnabled:
		d.m.blocked.WithLabelValues(label).Set(1)
		c.once(id, "disabled", func() {
			d.log.Info("order sync disabled for shop; its changes are skipped", "shop_id", id, "key", prestashop.KeySyncEnabled)
		})
	default:
		d.m.blocked.WithLabelValues(label).Set(0)
	}
	if d.cfg.Targets.ToShoppingFeed() {
		c.checkToken(ctx, id)
	}
	if d.hook != nil {
		if sh.hook, err = d.hook.Resolve(ctx, d.store, id); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

// report logs a shop's problem, and writes it to the process log, at most
// once a minute.
func (c *shopCache) report(ctx context.Context, shopID uint32, kind, msg string) {
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
	if err := c.d.store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:detector", Msg: msg, Level: prestashop.LevelError, Session: c.d.instance}); err != nil {
		c.d.log.Warn("write process log", "err", err)
	}
}

func (c *shopCache) once(shopID uint32, kind string, f func()) {
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
func (c *shopCache) checkToken(ctx context.Context, id uint32) {
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
		_ = c.d.store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:detector", Msg: "shop " + strconv.FormatUint(uint64(id), 10) + ": " + msg, Level: prestashop.LevelError, Session: c.d.instance})
	}
}
