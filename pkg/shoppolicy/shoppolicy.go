// Package shoppolicy is the one reading of a shop's configuration that the
// detector, the sender and the ticket poller share: whether the shop's
// updates go, its shipment delay, its mapping of states to operations, the
// webhook's names, and the Shopping Feed token its orders are sent and
// their tickets read with. A Cache reads each shop at most every TTL.
package shoppolicy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/targets"
)

// DefaultDelay is the shipment delay while a shop's configuration cannot be
// read: the module's default time shift.
const DefaultDelay = 5 * time.Minute

// Config is what a Cache needs beside the store.
type Config struct {
	// TTL is how long a shop, a state or a token is cached (SETTINGS_TTL).
	TTL time.Duration
	// ShippedDelay overrides the shops' time shift when set (SHIPPED_DELAY).
	ShippedDelay *time.Duration
	// SFToken and SFStoreID serve orders whose shop has no token row
	// (SF_TOKEN, SF_STORE_ID).
	SFToken   config.Secret
	SFStoreID string
	// Hook is the webhook target's mapping; nil without that target.
	Hook targets.Mapping
	// Loaded, when set, is called with each shop read anew (the detector
	// reports a shop's problems there).
	Loaded func(ctx context.Context, sh *Shop)
}

// Shop is what the policy knows of one shop.
type Shop struct {
	ID       uint32
	Settings prestashop.ShopSettings
	// ConfigErr is a configuration the merchant must fix (a malformed
	// mapping list, say); Settings are then empty.
	ConfigErr error
	// Block is the conflict guard: another tool also sends order updates.
	Block prestashop.SyncBlock
	// Delay is how long a shipment waits for its tracking number.
	Delay time.Duration
	// Hook is the webhook target's names for this shop's states.
	Hook   targets.ShopMapping
	loaded time.Time
}

// Hold kinds: why a shop's updates wait.
const (
	HoldConfig   = "config"
	HoldGuard    = "guard"
	HoldDisabled = "disabled"
)

// Hold says why the shop's Shopping Feed updates wait, and kind "" when
// they go: the conflict guard (first: it blocks whatever the
// configuration), a configuration that cannot be read, or the sync switch
// (SHOPPINGFEED_ORDER_SYNC_ENABLED) off.
func (s *Shop) Hold() (kind, reason string) {
	switch {
	case s.Block.Blocked():
		return HoldGuard, s.Block.Reason
	case s.ConfigErr != nil:
		return HoldConfig, s.ConfigErr.Error()
	case !s.Settings.SyncEnabled:
		return HoldDisabled, prestashop.KeySyncEnabled + " is off"
	}
	return "", ""
}

// Syncs reports whether the shop's changes become tasks. The guard and the
// sync switch make none; a configuration that cannot be read keeps them as
// tasks, which wait (Hold) until the merchant fixes it.
func (s *Shop) Syncs() bool {
	kind, _ := s.Hold()
	return kind == "" || kind == HoldConfig
}

// Operation is the Shopping Feed operation the shop's mapping gives a state.
func (s *Shop) Operation(stateID uint32) (prestashop.Operation, bool) {
	return s.Settings.Mapping.Resolve(stateID)
}

// Token is the Shopping Feed token and store an order is sent with.
type Token struct {
	// ID is the shoppingfeed_token row; 0 for SF_TOKEN.
	ID      uint32
	Secret  config.Secret
	StoreID string
}

// ErrNoToken is returned when no token can send an order: its updates and
// ticket reads wait until the merchant sets one.
var ErrNoToken = errors.New("no Shopping Feed token")

// Cache reads shops, states and tokens for a TTL. It is safe for
// concurrent use.
type Cache struct {
	store *prestashop.Store
	cfg   Config

	mu     sync.Mutex
	shops  map[uint32]*Shop
	states map[string]cachedState
	tokens map[string]cachedToken
}

type cachedState struct {
	st     prestashop.OrderState
	loaded time.Time
}

type cachedToken struct {
	tok    Token
	err    error
	loaded time.Time
}

// New returns a Cache over store.
func New(store *prestashop.Store, cfg Config) *Cache {
	return &Cache{store: store, cfg: cfg, shops: map[uint32]*Shop{}, states: map[string]cachedState{}, tokens: map[string]cachedToken{}}
}

// Shop returns shop id's policy, read at most TTL ago.
func (c *Cache) Shop(ctx context.Context, id uint32) (*Shop, error) {
	c.mu.Lock()
	sh, ok := c.shops[id]
	c.mu.Unlock()
	if ok && time.Since(sh.loaded) < c.cfg.TTL {
		return sh, nil
	}
	sh, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.shops[id] = sh
	c.mu.Unlock()
	if c.cfg.Loaded != nil {
		c.cfg.Loaded(ctx, sh)
	}
	return sh, nil
}

func (c *Cache) load(ctx context.Context, id uint32) (*Shop, error) {
	sh := &Shop{ID: id, loaded: time.Now(), Delay: DefaultDelay}
	st, err := c.store.Settings(ctx, id)
	var ce *prestashop.ConfigError
	switch {
	case errors.As(err, &ce):
		sh.ConfigErr = err
	case err != nil:
		return nil, err
	default:
		sh.Settings = st
		sh.Delay = time.Duration(st.TimeShiftMinutes) * time.Minute
	}
	if c.cfg.ShippedDelay != nil {
		// update_at is a DATETIME: whole seconds. Round up, so that a
		// sub-second delay is not truncated to none.
		sh.Delay = (*c.cfg.ShippedDelay + time.Second - 1).Truncate(time.Second)
	}
	if sh.Block, err = c.store.SyncBlocked(ctx, id); err != nil {
		return nil, err
	}
	if c.cfg.Hook != nil {
		if sh.Hook, err = c.cfg.Hook.Resolve(ctx, c.store, id); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

// State returns an order state's flags and name in a language, read at most
// a minute ago.
func (c *Cache) State(ctx context.Context, id, lang uint32) (prestashop.OrderState, error) {
	key := strconv.FormatUint(uint64(id), 10) + "/" + strconv.FormatUint(uint64(lang), 10)
	c.mu.Lock()
	cs, ok := c.states[key]
	c.mu.Unlock()
	if ok && time.Since(cs.loaded) < time.Minute {
		return cs.st, nil
	}
	st, err := c.store.OrderState(ctx, id, lang)
	if err != nil {
		return prestashop.OrderState{}, err
	}
	c.mu.Lock()
	c.states[key] = cachedState{st: st, loaded: time.Now()}
	c.mu.Unlock()
	return st, nil
}

// Token resolves the token an order of shopID is sent with, and its
// batches' tickets read with: the order's own token row (tokenID, 0 for
// none), else the shop's active token, else SF_TOKEN with SF_STORE_ID. A
// row without a store id or a token is skipped. When none serves, the
// error wraps ErrNoToken and says why each did not.
func (c *Cache) Token(ctx context.Context, tokenID, shopID uint32) (Token, error) {
	key := strconv.FormatUint(uint64(tokenID), 10) + "/" + strconv.FormatUint(uint64(shopID), 10)
	c.mu.Lock()
	ct, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && time.Since(ct.loaded) < c.cfg.TTL {
		return ct.tok, ct.err
	}
	tok, err := c.resolve(ctx, tokenID, shopID)
	if err != nil && !errors.Is(err, ErrNoToken) {
		return Token{}, err // the database: not cached
	}
	c.mu.Lock()
	c.tokens[key] = cachedToken{tok: tok, err: err, loaded: time.Now()}
	c.mu.Unlock()
	return tok, err
}

func (c *Cache) resolve(ctx context.Context, tokenID, shopID uint32) (Token, error) {
	var problems []string
	if tokenID != 0 {
		t, err := c.store.Token(ctx, tokenID)
		switch {
		case err == nil && t.StoreID != "" && t.Content != "":
			return Token{ID: t.ID, Secret: t.Content, StoreID: t.StoreID}, nil
		case err == nil:
			problems = append(problems, fmt.Sprintf("token row %d has no store id or content", tokenID))
		case errors.Is(err, prestashop.ErrNotFound):
			problems = append(problems, fmt.Sprintf("token row %d does not exist", tokenID))
		default:
			return Token{}, err
		}
	}
	t, err := c.store.ActiveToken(ctx, shopID)
	switch {
	case err == nil && t.StoreID != "" && t.Content != "":
		return Token{ID: t.ID, Secret: t.Content, StoreID: t.StoreID}, nil
	case err == nil:
		problems = append(problems, fmt.Sprintf("active token row %d has no store id or content", t.ID))
	case errors.Is(err, prestashop.ErrNotFound):
		problems = append(problems, fmt.Sprintf("shop %d has no active token", shopID))
	default:
		return Token{}, err
	}
	if c.cfg.SFToken != "" {
		return Token{Secret: c.cfg.SFToken, StoreID: c.cfg.SFStoreID}, nil
	}
	return Token{}, fmt.Errorf("%w: %s", ErrNoToken, strings.Join(append(problems, "SF_TOKEN is not set"), "; "))
}
