// Package targets configures where order updates go: Shopping Feed (the
// default) and a signed webhook for other systems (ERPs, fulfilment
// services), and maps PrestaShop states to the webhook's status names.
package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
)

// Targets, as the TARGETS variable and the events name them.
const (
	ShoppingFeed = events.TargetShoppingFeed
	Webhook      = events.TargetWebhook
)

// Config is the targets part of the detector's and the sender's
// configuration.
type Config struct {
	Targets string `env:"TARGETS, default=shoppingfeed"`
	Hook    WebhookConfig
}

// WebhookConfig configures the webhook target.
type WebhookConfig struct {
	URL    string        `env:"WEBHOOK_URL"`
	Secret config.Secret `env:"WEBHOOK_SECRET"`
	KeyID  string        `env:"WEBHOOK_KEY_ID, default=sfsync"`
	// MappingFile maps PrestaShop states to status names (JSON); empty:
	// the stock states' default names.
	MappingFile string `env:"WEBHOOK_MAPPING_FILE"`
	// Orders is "shoppingfeed" (orders that came from Shopping Feed) or
	// "all" (every order of the shop).
	Orders string `env:"WEBHOOK_ORDERS, default=shoppingfeed"`
	// ExternalID is payment_transaction, shoppingfeed_id or none.
	ExternalID string        `env:"WEBHOOK_EXTERNAL_ID, default=payment_transaction"`
	Timeout    time.Duration `env:"WEBHOOK_TIMEOUT, default=10s"`
}

// List returns the configured targets; an empty TARGETS is Shopping Feed.
func (c Config) List() []string {
	if strings.TrimSpace(c.Targets) == "" {
		return []string{ShoppingFeed}
	}
	var out []string
	for _, t := range strings.Split(c.Targets, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// ToShoppingFeed reports whether updates go to Shopping Feed.
func (c Config) ToShoppingFeed() bool { return slices.Contains(c.List(), ShoppingFeed) }

// ToWebhook reports whether updates go to the webhook.
func (c Config) ToWebhook() bool { return slices.Contains(c.List(), Webhook) }

// AllOrders reports whether the webhook covers every order of a shop.
func (c Config) AllOrders() bool { return c.ToWebhook() && c.Hook.Orders == "all" }

// Validate checks the values and loads the mapping file once.
func (c Config) Validate() error {
	list := c.List()
	if len(list) == 0 {
		return config.Invalid("TARGETS", "names no target")
	}
	for _, t := range list {
		if t != ShoppingFeed && t != Webhook {
			return config.Invalid("TARGETS", "%q is not shoppingfeed or webhook", t)
		}
	}
	if !c.ToWebhook() {
		return nil
	}
	w := c.Hook
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		return config.Invalid("WEBHOOK_URL", "required with TARGETS=webhook")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return config.Invalid("WEBHOOK_URL", "%q is not an http(s) URL", config.RedactURL(w.URL))
	case w.Secret == "":
		return config.Invalid("WEBHOOK_SECRET", "required with TARGETS=webhook")
	case w.KeyID == "" || strings.Contains(w.KeyID, "$"):
		return config.Invalid("WEBHOOK_KEY_ID", "must be set and may not contain $")
	case w.Orders != "all" && w.Orders != "shoppingfeed":
		return config.Invalid("WEBHOOK_ORDERS", "%q is not all or shoppingfeed", w.Orders)
	case w.ExternalID != "payment_transaction" && w.ExternalID != "shoppingfeed_id" && w.ExternalID != "none":
		return config.Invalid("WEBHOOK_EXTERNAL_ID", "%q is not payment_transaction, shoppingfeed_id or none", w.ExternalID)
	case w.Timeout <= 0:
		return config.Invalid("WEBHOOK_TIMEOUT", "must be positive")
	}
	if _, err := LoadMapping(w.MappingFile); err != nil {
		return err
	}
	return nil
}

// Mapping maps PrestaShop states to webhook status names. Its keys are
// order state ids ("4") or the configuration keys that hold them
// ("PS_OS_SHIPPING"), resolved per shop.
type Mapping map[string]string

// DefaultMapping maps the stock states: payment accepted → ORDERED,
// preparation in progress → FULFILLED, shipped → SHIPPED, delivered →
// DELIVERED, canceled → CANCELLED_MERCHANT.
func DefaultMapping() Mapping {
	return Mapping{
		"PS_OS_PAYMENT":     "ORDERED",
		"PS_OS_PREPARATION": "FULFILLED",
		"PS_OS_SHIPPING":    "SHIPPED",
		"PS_OS_DELIVERED":   "DELIVERED",
		"PS_OS_CANCELED":    "CANCELLED_MERCHANT",
	}
}

// LoadMapping reads a mapping file: a JSON object of state (id or PS_OS_*
// key) to status name. An empty path is DefaultMapping.
func LoadMapping(path string) (Mapping, error) {
	if path == "" {
		return DefaultMapping(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Invalid("WEBHOOK_MAPPING_FILE", "%v", err)
	}
	var m Mapping
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, config.Invalid("WEBHOOK_MAPPING_FILE", "%s is not a JSON object of state → status name: %v", path, err)
	}
	for k, v := range m {
		if strings.TrimSpace(v) == "" {
			return nil, config.Invalid("WEBHOOK_MAPPING_FILE", "%s: state %q maps to an empty name", path, k)
		}
		if _, err := strconv.ParseUint(k, 10, 32); err != nil && !strings.HasPrefix(k, "PS_OS_") {
			return nil, config.Invalid("WEBHOOK_MAPPING_FILE", "%s: key %q is neither a state id nor a PS_OS_* key", path, k)
		}
	}
	return m, nil
}

// ShopMapping is a mapping resolved for one shop.
type ShopMapping struct {
	Names map[uint32]string
	// Shipping is the shop's PS_OS_SHIPPING state: its updates wait for
	// the tracking number like Shopping Feed's.
	Shipping uint32
}

// Resolve turns the mapping's keys into the shop's state ids.
func (m Mapping) Resolve(ctx context.Context, store *prestashop.Store, shopID uint32) (ShopMapping, error) {
	keys := []string{"PS_OS_SHIPPING"}
	for k := range m {
		if strings.HasPrefix(k, "PS_OS_") {
			keys = append(keys, k)
		}
	}
	vals, err := store.ConfigValues(ctx, shopID, keys...)
	if err != nil {
		return ShopMapping{}, err
	}
	sm := ShopMapping{Names: map[uint32]string{}}
	if n, err := strconv.ParseUint(strings.TrimSpace(vals["PS_OS_SHIPPING"]), 10, 32); err == nil {
		sm.Shipping = uint32(n)
	}
	for k, name := range m {
		v := k
		if strings.HasPrefix(k, "PS_OS_") {
			v = strings.TrimSpace(vals[k])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			continue // a key the shop does not define maps nothing
		}
		sm.Names[uint32(n)] = name
	}
	return sm, nil
}

// String describes the mapping for logs.
func (sm ShopMapping) String() string {
	ids := make([]int, 0, len(sm.Names))
	for id := range sm.Names {
		ids = append(ids, int(id))
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d=%s", id, sm.Names[uint32(id)])
	}
	return strings.Join(parts, " ")
}
