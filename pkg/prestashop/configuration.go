package prestashop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Shop is a row of the shop table.
type Shop struct {
	ID      uint32
	GroupID uint32
	Name    string
	Active  bool
}

// Shops lists the shops that are not deleted.
func (s *Store) Shops(ctx context.Context) ([]Shop, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id_shop, id_shop_group, name, active FROM "+s.T("shop")+" WHERE deleted = 0 ORDER BY id_shop")
	if err != nil {
		return nil, fmt.Errorf("list shops: %w", err)
	}
	defer rows.Close()
	var shops []Shop
	for rows.Next() {
		var sh Shop
		if err := rows.Scan(&sh.ID, &sh.GroupID, &sh.Name, &sh.Active); err != nil {
			return nil, fmt.Errorf("list shops: %w", err)
		}
		shops = append(shops, sh)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list shops: %w", err)
	}
	return shops, nil
}

// Shop reads one shop.
func (s *Store) Shop(ctx context.Context, shopID uint32) (Shop, error) {
	var sh Shop
	err := s.db.QueryRowContext(ctx, "SELECT id_shop, id_shop_group, name, active FROM "+s.T("shop")+" WHERE id_shop = ?", shopID).
		Scan(&sh.ID, &sh.GroupID, &sh.Name, &sh.Active)
	if errors.Is(err, sql.ErrNoRows) {
		return Shop{}, fmt.Errorf("shop %d: %w", shopID, ErrNotFound)
	}
	if err != nil {
		return Shop{}, fmt.Errorf("read shop %d: %w", shopID, err)
	}
	return sh, nil
}

// ConfigValues reads configuration keys for a shop the way PrestaShop's
// Configuration::get does: the shop's own row wins, then its group's row,
// then the global row (id_shop and id_shop_group both NULL or 0). Keys with
// no row at any level are absent from the map.
func (s *Store) ConfigValues(ctx context.Context, shopID uint32, keys ...string) (map[string]string, error) {
	if len(keys) == 0 {
		return map[string]string{}, nil
	}
	sh, err := s.Shop(ctx, shopID)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, len(keys)+2)
	args = append(args, shopID, sh.GroupID)
	for _, k := range keys {
		args = append(args, k)
	}
	// rank 3: shop row, 2: group row, 1: global row.
	q := `SELECT name, value,
	        CASE WHEN COALESCE(id_shop, 0) <> 0 THEN 3
	             WHEN COALESCE(id_shop_group, 0) <> 0 THEN 2 ELSE 1 END AS lvl
	      FROM ` + s.T("configuration") + `
	      WHERE (COALESCE(id_shop, 0) = ? OR COALESCE(id_shop, 0) = 0)
	        AND (COALESCE(id_shop_group, 0) = ? OR COALESCE(id_shop_group, 0) = 0 OR COALESCE(id_shop, 0) <> 0)
	        AND name IN (?` + strings.Repeat(",?", len(keys)-1) + `)`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read configuration of shop %d: %w", shopID, err)
	}
	defer rows.Close()
	best := map[string]int{}
	out := map[string]string{}
	for rows.Next() {
		var name string
		var value sql.NullString
		var lvl int
		if err := rows.Scan(&name, &value, &lvl); err != nil {
			return nil, fmt.Errorf("read configuration of shop %d: %w", shopID, err)
		}
		if lvl > best[name] {
			best[name] = lvl
			out[name] = value.String
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read configuration of shop %d: %w", shopID, err)
	}
	return out, nil
}

// ConfigValue reads one key; ok is false when no level defines it.
func (s *Store) ConfigValue(ctx context.Context, shopID uint32, key string) (value string, ok bool, err error) {
	m, err := s.ConfigValues(ctx, shopID, key)
	if err != nil {
		return "", false, err
	}
	v, ok := m[key]
	return v, ok, nil
}

// ConfigError is a configuration value of a shop that sfsync cannot use.
type ConfigError struct {
	ShopID uint32
	Key    string
	Value  string
	Reason string
}

func (e *ConfigError) Error() string {
	v := e.Value
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	return fmt.Sprintf("shop %d: configuration %s = %q: %s", e.ShopID, e.Key, v, e.Reason)
}

// Operation is a Shopping Feed order operation sfsync sends.
type Operation string

// The operations the mapping lists map to.
const (
	OpShip    Operation = "ship"
	OpCancel  Operation = "cancel"
	OpRefund  Operation = "refund"
	OpDeliver Operation = "deliver"
)

// Configuration keys sfsync reads.
const (
	KeyShipped        = "SHOPPINGFEED_SHIPPED_ORDERS"
	KeyCancelled      = "SHOPPINGFEED_CANCELLED_ORDERS"
	KeyRefunded       = "SHOPPINGFEED_REFUNDED_ORDERS"
	KeyDelivered      = "SHOPPINGFEED_DELIVERED_ORDERS"
	KeySyncEnabled    = "SHOPPINGFEED_ORDER_SYNC_ENABLED"
	KeyTimeShift      = "SHOPPINGFEED_ORDER_STATUS_TIME_SHIFT"
	KeyMaxOrders      = "SHOPPINGFEED_ORDER_STATUS_MAX_ORDERS"
	KeyShopEmail      = "PS_SHOP_EMAIL"
	KeyShopName       = "PS_SHOP_NAME"
	KeyLegacyShipped  = "SHOPPING_FLUX_STATUS_SHIPPED"
	KeyLegacyCanceled = "SHOPPING_FLUX_STATUS_CANCELED"
	// KeyPartialRefund is the module's switch for partial refunds (order
	// import rules, "allow partial refund"): off unless set, as in the
	// module.
	KeyPartialRefund = "SHOPPINGFEED_ALLOW_PARTIAL_REFUND"
	// KeyReferenceFormat is the product field the feed exports as each
	// product's reference (ReferenceFormats).
	KeyReferenceFormat = "SHOPPINGFEED_PRODUCT_FEED_REFERENCE_FORMAT"
)

// MappingKeys lists the mapping keys in the order a state that appears in
// several lists resolves: ship, then cancel, then refund, then deliver.
var MappingKeys = []struct {
	Key string
	Op  Operation
}{
	{KeyShipped, OpShip},
	{KeyCancelled, OpCancel},
	{KeyRefunded, OpRefund},
	{KeyDelivered, OpDeliver},
}

// Mapping is a shop's mapping from PrestaShop states to operations.
type Mapping map[Operation][]uint32

// Resolve returns the operation a state maps to, by the precedence of
// MappingKeys.
func (m Mapping) Resolve(stateID uint32) (Operation, bool) {
	for _, k := range MappingKeys {
		if m.Contains(k.Op, stateID) {
			return k.Op, true
		}
	}
	return "", false
}

// Contains reports whether stateID is in op's list.
func (m Mapping) Contains(op Operation, stateID uint32) bool {
	for _, id := range m[op] {
		if id == stateID {
			return true
		}
	}
	return false
}

// ParseStateList parses a mapping list as the module stores it: a JSON array
// of state ids, as strings (["4","5"]) or numbers ([4,5]). An empty value
// or null is an empty list.
func ParseStateList(raw string) ([]uint32, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return nil, errors.New("not a JSON array of order state ids")
	}
	ids := make([]uint32, 0, len(items))
	for i, it := range items {
		s := strings.TrimSpace(string(it))
		if unq, err := strconv.Unquote(s); err == nil && strings.HasPrefix(s, `"`) {
			s = strings.TrimSpace(unq)
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("item %d (%s) is not an order state id", i, string(it))
		}
		ids = append(ids, uint32(n))
	}
	return ids, nil
}

// ShopSettings is what sfsync reads of one shop's configuration.
type ShopSettings struct {
	ShopID      uint32
	SyncEnabled bool
	// TimeShiftMinutes is how long a shipment waits for its tracking number.
	TimeShiftMinutes int
	// MaxOrders is the number of orders per batch (1..200).
	MaxOrders int
	Mapping   Mapping
	ShopEmail string
	ShopName  string
	// PartialRefunds is SHOPPINGFEED_ALLOW_PARTIAL_REFUND: order slips are
	// sent as partial refunds.
	PartialRefunds bool
	// ReferenceFormat is SHOPPINGFEED_PRODUCT_FEED_REFERENCE_FORMAT, as
	// stored (checked when a partial refund is sent).
	ReferenceFormat string
}

// Settings reads and validates a shop's settings. A malformed value is a
// *ConfigError naming the key and the shop.
func (s *Store) Settings(ctx context.Context, shopID uint32) (ShopSettings, error) {
	keys := []string{KeySyncEnabled, KeyTimeShift, KeyMaxOrders, KeyShopEmail, KeyShopName, KeyPartialRefund, KeyReferenceFormat}
	for _, k := range MappingKeys {
		keys = append(keys, k.Key)
	}
	vals, err := s.ConfigValues(ctx, shopID, keys...)
	if err != nil {
		return ShopSettings{}, err
	}
	st := ShopSettings{ShopID: shopID, SyncEnabled: true, TimeShiftMinutes: 5, MaxOrders: 100, Mapping: Mapping{},
		ShopEmail: vals[KeyShopEmail], ShopName: vals[KeyShopName], ReferenceFormat: strings.TrimSpace(vals[KeyReferenceFormat])}
	// The module reads its switch with (int) Configuration::get: anything
	// but a number other than 0 is off.
	if n, err := strconv.Atoi(strings.TrimSpace(vals[KeyPartialRefund])); err == nil && n != 0 {
		st.PartialRefunds = true
	}
	if v, ok := vals[KeySyncEnabled]; ok && strings.TrimSpace(v) != "" {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "true", "on", "yes":
			st.SyncEnabled = true
		case "0", "false", "off", "no":
			st.SyncEnabled = false
		default:
			return ShopSettings{}, &ConfigError{ShopID: shopID, Key: KeySyncEnabled, Value: v, Reason: "not 0 or 1"}
		}
	}
	if v, ok := vals[KeyTimeShift]; ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 7*24*60 {
			return ShopSettings{}, &ConfigError{ShopID: shopID, Key: KeyTimeShift, Value: v, Reason: "not a number of minutes between 0 and 10080"}
		}
		st.TimeShiftMinutes = n
	}
	if v, ok := vals[KeyMaxOrders]; ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 200 {
			return ShopSettings{}, &ConfigError{ShopID: shopID, Key: KeyMaxOrders, Value: v, Reason: "not a number of orders between 1 and 200"}
		}
		st.MaxOrders = n
	}
	for _, k := range MappingKeys {
		ids, err := ParseStateList(vals[k.Key])
		if err != nil {
			return ShopSettings{}, &ConfigError{ShopID: shopID, Key: k.Key, Value: vals[k.Key], Reason: err.Error()}
		}
		st.Mapping[k.Op] = ids
	}
	return st, nil
}
