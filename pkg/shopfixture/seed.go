package shopfixture

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// noDate is what the seed writes to orders.invoice_date and delivery_date
// (NOT NULL, no default) for an order not invoiced nor delivered yet.
// PrestaShop writes '0000-00-00 00:00:00' there under its own empty sql_mode;
// strict mode with NO_ZERO_DATE (MySQL 8's default) refuses that.
const noDate = "'1970-01-01 00:00:00'"

// Fixture seeds one shop database.
type Fixture struct {
	db     *sql.DB
	prefix string
}

// New returns a fixture over db with the table prefix.
func New(db *sql.DB, prefix string) *Fixture { return &Fixture{db: db, prefix: prefix} }

// DB is the pool the fixture writes with.
func (f *Fixture) DB() *sql.DB { return f.db }

func (f *Fixture) t(name string) string { return "`" + f.prefix + name + "`" }

// Scope is where a configuration value is set: a shop, a shop group, or
// everywhere (Global).
type Scope struct {
	ShopID  uint32
	GroupID uint32
}

// Global is the scope of a value set for every shop.
var Global = Scope{}

// ShopScope is the scope of one shop.
func ShopScope(id uint32) Scope { return Scope{ShopID: id} }

// GroupScope is the scope of one shop group.
func GroupScope(id uint32) Scope { return Scope{GroupID: id} }

// SetConfig sets a configuration value at a scope as PrestaShop's
// Configuration::updateValue does: one row per (name, scope).
func (f *Fixture) SetConfig(ctx context.Context, sc Scope, key, value string) error {
	var shop, group any
	if sc.ShopID != 0 {
		shop = sc.ShopID
		var g uint32
		if err := f.db.QueryRowContext(ctx, "SELECT id_shop_group FROM "+f.t("shop")+" WHERE id_shop = ?", sc.ShopID).Scan(&g); err != nil {
			return fmt.Errorf("set %s for shop %d: %w", key, sc.ShopID, err)
		}
		group = g
	} else if sc.GroupID != 0 {
		group = sc.GroupID
	}
	res, err := f.db.ExecContext(ctx, "UPDATE "+f.t("configuration")+" SET value = ?, date_upd = NOW() WHERE name = ? AND id_shop <=> ? AND id_shop_group <=> ?",
		value, key, shop, group)
	if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	var exists int
	if err := f.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+f.t("configuration")+" WHERE name = ? AND id_shop <=> ? AND id_shop_group <=> ?", key, shop, group).Scan(&exists); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	if exists > 0 { // same value: UPDATE changed nothing
		return nil
	}
	if _, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("configuration")+" (id_shop_group, id_shop, name, value, date_add, date_upd) VALUES (?, ?, ?, ?, NOW(), NOW())",
		group, shop, key, value); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// SetStateList sets a mapping list as the module saves it: a JSON array of
// state ids as strings.
func (f *Fixture) SetStateList(ctx context.Context, sc Scope, key string, states ...uint32) error {
	s := make([]string, len(states))
	for i, id := range states {
		s[i] = strconv.FormatUint(uint64(id), 10)
	}
	b, _ := json.Marshal(s)
	return f.SetConfig(ctx, sc, key, string(b))
}

// CreateShopGroup adds a shop group.
func (f *Fixture) CreateShopGroup(ctx context.Context, name string) (uint32, error) {
	return f.insert(ctx, "INSERT INTO "+f.t("shop_group")+
		" (name, color, share_customer, share_order, share_stock, active, deleted) VALUES (?, '', 0, 0, 0, 1, 0)", name)
}

// CreateShop adds a shop to a group (1 is the default group).
func (f *Fixture) CreateShop(ctx context.Context, groupID uint32, name string) (uint32, error) {
	return f.insert(ctx, "INSERT INTO "+f.t("shop")+
		" (id_shop_group, name, color, id_category, theme_name, active, deleted) VALUES (?, ?, '', 2, 'classic', 1, 0)", groupID, name)
}

// CreateCarrier adds an active carrier; url has '@' for the tracking number.
func (f *Fixture) CreateCarrier(ctx context.Context, name, url string) (uint32, error) {
	id, err := f.insert(ctx, "INSERT INTO "+f.t("carrier")+" (id_reference, name, url, active) VALUES (0, ?, NULLIF(?, ''), 1)", name, url)
	if err != nil {
		return 0, err
	}
	_, err = f.db.ExecContext(ctx, "UPDATE "+f.t("carrier")+" SET id_reference = id_carrier WHERE id_carrier = ?", id)
	return id, err
}

// StateFlags are an order state's flags.
type StateFlags struct {
	Shipped, Delivery, Paid, Invoice, Logable bool
}

// CreateState adds an order state, as a third-party module would.
func (f *Fixture) CreateState(ctx context.Context, name string, fl StateFlags) (uint32, error) {
	id, err := f.insert(ctx, "INSERT INTO "+f.t("order_state")+" (invoice, send_email, unremovable, logable, delivery, shipped, paid, color) VALUES (?, 0, 0, ?, ?, ?, ?, '#32CD32')",
		fl.Invoice, fl.Logable, fl.Delivery, fl.Shipped, fl.Paid)
	if err != nil {
		return 0, err
	}
	_, err = f.db.ExecContext(ctx, "INSERT INTO "+f.t("order_state_lang")+" (id_order_state, id_lang, name, template) VALUES (?, 1, ?, '')", id, name)
	return id, err
}

// InstallModule registers a module as installed (active or not) for every shop.
func (f *Fixture) InstallModule(ctx context.Context, name string, active bool) error {
	if _, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("module")+" (name, active, version) VALUES (?, ?, '1.0.0') ON DUPLICATE KEY UPDATE active = VALUES(active)", name, active); err != nil {
		return fmt.Errorf("install module %s: %w", name, err)
	}
	return nil
}

// CreateToken adds a Shopping Feed token for a shop with its store id (a
// number: the column is INT UNSIGNED), as the module's addToken does: in
// language 1 and currency 1, with a feed key of its own.
func (f *Fixture) CreateToken(ctx context.Context, shopID uint32, token, storeID string) (uint32, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return f.insert(ctx, "INSERT INTO "+f.t("shoppingfeed_token")+
		" (id_shop, id_lang, id_currency, content, active, merchant, shoppingfeed_store_id, feed_key, date_add, date_upd) VALUES (?, 1, 1, ?, 1, 'merchant', ?, ?, NOW(), NOW())",
		shopID, token, storeID, hex.EncodeToString(b[:]))
}

// SFLink is a Shopping Feed order's link row.
type SFLink struct {
	// InternalID is the SF order id; empty sends by reference.
	InternalID     string
	MarketplaceRef string
	Channel        string
	TokenID        uint32
}

// OrderSpec describes an order to create.
type OrderSpec struct {
	ShopID    uint32
	CarrierID uint32
	// StateID is the state the order is created in (default payment accepted).
	StateID   uint32
	Reference string
	// SF, when set, makes it a Shopping Feed order.
	SF *SFLink
	// TransactionID, when set, adds an order_payment row.
	TransactionID string
}

// CreateOrder adds an order the way PrestaShop's order import does: the
// orders row, an order_carrier row without tracking number, the first
// order_history row, and the shoppingfeed_order link when SF is set.
func (f *Fixture) CreateOrder(ctx context.Context, o OrderSpec) (uint32, error) {
	if o.ShopID == 0 {
		o.ShopID = 1
	}
	if o.StateID == 0 {
		o.StateID = StatePaymentAccepted
	}
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	defer tx.Rollback()
	var group uint32
	if err := tx.QueryRowContext(ctx, "SELECT id_shop_group FROM "+f.t("shop")+" WHERE id_shop = ?", o.ShopID).Scan(&group); err != nil {
		return 0, fmt.Errorf("create order in shop %d: %w", o.ShopID, err)
	}
	payment := "sfpayment"
	if o.SF == nil {
		payment = "ps_wirepayment"
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("orders")+
		` (reference, id_shop_group, id_shop, id_carrier, id_lang, id_customer, id_cart, id_currency, id_address_delivery,
		   id_address_invoice, current_state, payment, module, valid, invoice_date, delivery_date, date_add, date_upd)
		  VALUES (?, ?, ?, ?, 1, 1, 1, 1, 1, 1, ?, ?, ?, 1, `+noDate+`, `+noDate+`, NOW(), NOW())`,
		o.Reference, group, o.ShopID, o.CarrierID, o.StateID, payment, payment)
	if err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	id64, _ := res.LastInsertId()
	id := uint32(id64)
	if o.Reference == "" {
		if _, err := tx.ExecContext(ctx, "UPDATE "+f.t("orders")+" SET reference = ? WHERE id_order = ?", fmt.Sprintf("REF%06d", id), id); err != nil {
			return 0, fmt.Errorf("create order: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("order_carrier")+" (id_order, id_carrier, date_add) VALUES (?, ?, NOW())", id, o.CarrierID); err != nil {
		return 0, fmt.Errorf("create order carrier: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("order_history")+" (id_employee, id_order, id_order_state, date_add) VALUES (0, ?, ?, NOW())", id, o.StateID); err != nil {
		return 0, fmt.Errorf("create order history: %w", err)
	}
	if o.SF != nil {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("shoppingfeed_order")+
			` (id_internal_shoppingfeed, id_order_marketplace, name_marketplace, id_order, payment_method, date_marketplace_creation,
			   id_shoppingfeed_token, date_add, date_upd) VALUES (NULLIF(?, ''), ?, ?, ?, 'sfpayment', NOW(), ?, NOW(), NOW())`,
			o.SF.InternalID, o.SF.MarketplaceRef, o.SF.Channel, id, o.SF.TokenID); err != nil {
			return 0, fmt.Errorf("create shoppingfeed order: %w", err)
		}
	}
	if o.TransactionID != "" {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("order_payment")+
			" (order_reference, id_currency, amount, payment_method, transaction_id, date_add) SELECT reference, 1, 10, ?, ?, NOW() FROM "+f.t("orders")+" WHERE id_order = ?",
			payment, o.TransactionID, id); err != nil {
			return 0, fmt.Errorf("create order payment: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	return id, nil
}

// ChangeState changes an order's state as PrestaShop's
// OrderHistory::changeIdOrderState and add do: the order_history row and
// orders.current_state in one transaction. It returns the history row's id.
func (f *Fixture) ChangeState(ctx context.Context, orderID, stateID uint32) (uint64, error) {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("change state of order %d: %w", orderID, err)
	}
	defer tx.Rollback()
	id, err := ChangeStateTx(ctx, tx, f.prefix, orderID, stateID)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("change state of order %d: %w", orderID, err)
	}
	return id, nil
}

// ChangeStateTx is ChangeState inside the caller's transaction, for tests
// that hold the transaction open.
func ChangeStateTx(ctx context.Context, tx *sql.Tx, prefix string, orderID, stateID uint32) (uint64, error) {
	res, err := tx.ExecContext(ctx, "INSERT INTO `"+prefix+"order_history` (id_employee, id_order, id_order_state, date_add) VALUES (1, ?, ?, NOW())", orderID, stateID)
	if err != nil {
		return 0, fmt.Errorf("change state of order %d: %w", orderID, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE `"+prefix+"orders` SET current_state = ?, date_upd = NOW() WHERE id_order = ?", stateID, orderID); err != nil {
		return 0, fmt.Errorf("change state of order %d: %w", orderID, err)
	}
	id, _ := res.LastInsertId()
	return uint64(id), nil
}

// SetTracking types a tracking number into the order's first order_carrier
// row, as the merchant does in the back office.
func (f *Fixture) SetTracking(ctx context.Context, orderID uint32, number string) error {
	_, err := f.db.ExecContext(ctx, "UPDATE "+f.t("order_carrier")+" SET tracking_number = ? WHERE id_order = ? ORDER BY id_order_carrier LIMIT 1", number, orderID)
	if err != nil {
		return fmt.Errorf("set tracking number of order %d: %w", orderID, err)
	}
	return nil
}

func (f *Fixture) insert(ctx context.Context, q string, args ...any) (uint32, error) {
	res, err := f.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("seed: %w", err)
	}
	return uint32(id), nil
}

// EnableModuleForShops installs a module (active) for the given shops only:
// module_shop rows, as PrestaShop's multistore does.
func (f *Fixture) EnableModuleForShops(ctx context.Context, name string, shops ...uint32) error {
	if err := f.InstallModule(ctx, name, true); err != nil {
		return err
	}
	for _, sh := range shops {
		if _, err := f.db.ExecContext(ctx, "INSERT IGNORE INTO "+f.t("module_shop")+" (id_module, id_shop) SELECT id_module, ? FROM "+f.t("module")+" WHERE name = ?", sh, name); err != nil {
			return fmt.Errorf("enable module %s for shop %d: %w", name, sh, err)
		}
	}
	return nil
}
