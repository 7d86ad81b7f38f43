// Package shopfixture creates the PrestaShop 8 tables sfsync reads, with
// PrestaShop's columns and types, and seeds shops, carriers, states, Shopping
// Feed orders and tokens for tests and the demo. ChangeState changes an
// order's state exactly as PrestaShop does.
package shopfixture

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// coreDDL holds PrestaShop 8's tables as install-dev/data/db_structure.sql
// defines them (columns sfsync does not read are kept where they are NOT NULL
// without default, so that inserts look like PrestaShop's). PREFIX_ is
// replaced by the table prefix.
var coreDDL = []string{
	`CREATE TABLE IF NOT EXISTS PREFIX_shop_group (
	  id_shop_group INT(11) UNSIGNED NOT NULL AUTO_INCREMENT,
	  name VARCHAR(64) NOT NULL,
	  color VARCHAR(50) NOT NULL DEFAULT '',
	  share_customer TINYINT(1) NOT NULL DEFAULT 0,
	  share_order TINYINT(1) NOT NULL DEFAULT 0,
	  share_stock TINYINT(1) NOT NULL DEFAULT 0,
	  active TINYINT(1) NOT NULL DEFAULT 1,
	  deleted TINYINT(1) NOT NULL DEFAULT 0,
	  PRIMARY KEY (id_shop_group)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_shop (
	  id_shop INT(11) UNSIGNED NOT NULL AUTO_INCREMENT,
	  id_shop_group INT(11) UNSIGNED NOT NULL,
	  name VARCHAR(64) NOT NULL,
	  color VARCHAR(50) NOT NULL DEFAULT '',
	  id_category INT(11) UNSIGNED NOT NULL DEFAULT 2,
	  theme_name VARCHAR(255) NOT NULL DEFAULT 'classic',
	  active TINYINT(1) NOT NULL DEFAULT 1,
	  deleted TINYINT(1) NOT NULL DEFAULT 0,
	  PRIMARY KEY (id_shop),
	  KEY IDX_CBDFBB9EF5C9E40 (id_shop_group)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_configuration (
	  id_configuration INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  id_shop_group INT(11) UNSIGNED DEFAULT NULL,
	  id_shop INT(11) UNSIGNED DEFAULT NULL,
	  name VARCHAR(254) NOT NULL,
	  value TEXT,
	  date_add DATETIME NOT NULL,
	  date_upd DATETIME NOT NULL,
	  PRIMARY KEY (id_configuration),
	  KEY name (name),
	  KEY id_shop (id_shop),
	  KEY id_shop_group (id_shop_group)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_module (
	  id_module INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  name VARCHAR(64) NOT NULL,
	  active TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  version VARCHAR(8) NOT NULL,
	  PRIMARY KEY (id_module),
	  UNIQUE KEY name_UNIQUE (name)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_module_shop (
	  id_module INT(11) UNSIGNED NOT NULL,
	  id_shop INT(11) UNSIGNED NOT NULL,
	  enable_device TINYINT(1) NOT NULL DEFAULT 7,
	  PRIMARY KEY (id_module, id_shop)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_carrier (
	  id_carrier INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  id_reference INT(10) UNSIGNED NOT NULL,
	  name VARCHAR(64) NOT NULL,
	  url VARCHAR(255) DEFAULT NULL,
	  active TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  deleted TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  shipping_handling TINYINT(1) UNSIGNED NOT NULL DEFAULT 1,
	  range_behavior TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  is_module TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  is_free TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  shipping_external TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  need_range TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  external_module_name VARCHAR(64) DEFAULT NULL,
	  shipping_method INT(2) NOT NULL DEFAULT 0,
	  position INT(10) UNSIGNED NOT NULL DEFAULT 0,
	  max_width INT(10) DEFAULT 0,
	  max_height INT(10) DEFAULT 0,
	  max_depth INT(10) DEFAULT 0,
	  max_weight DECIMAL(20,6) DEFAULT 0,
	  grade INT(10) DEFAULT 0,
	  PRIMARY KEY (id_carrier),
	  KEY deleted (deleted, active)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_state (
	  id_order_state INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  invoice TINYINT(1) UNSIGNED DEFAULT 0,
	  send_email TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  module_name VARCHAR(255) DEFAULT NULL,
	  color VARCHAR(32) DEFAULT NULL,
	  unremovable TINYINT(1) UNSIGNED NOT NULL,
	  hidden TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  logable TINYINT(1) NOT NULL DEFAULT 0,
	  delivery TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  shipped TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  paid TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  pdf_invoice TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  pdf_delivery TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  deleted TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  PRIMARY KEY (id_order_state),
	  KEY module_name (module_name)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_state_lang (
	  id_order_state INT(10) UNSIGNED NOT NULL,
	  id_lang INT(10) UNSIGNED NOT NULL,
	  name VARCHAR(64) NOT NULL,
	  template VARCHAR(64) NOT NULL,
	  PRIMARY KEY (id_order_state, id_lang)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_orders (
	  id_order INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  reference VARCHAR(9),
	  id_shop_group INT(11) UNSIGNED NOT NULL DEFAULT 1,
	  id_shop INT(11) UNSIGNED NOT NULL DEFAULT 1,
	  id_carrier INT(10) UNSIGNED NOT NULL,
	  id_lang INT(10) UNSIGNED NOT NULL,
	  id_customer INT(10) UNSIGNED NOT NULL,
	  id_cart INT(10) UNSIGNED NOT NULL,
	  id_currency INT(10) UNSIGNED NOT NULL,
	  id_address_delivery INT(10) UNSIGNED NOT NULL,
	  id_address_invoice INT(10) UNSIGNED NOT NULL,
	  current_state INT(10) UNSIGNED NOT NULL,
	  secure_key VARCHAR(32) NOT NULL DEFAULT '-1',
	  payment VARCHAR(255) NOT NULL,
	  conversion_rate DECIMAL(13,6) NOT NULL DEFAULT 1,
	  module VARCHAR(255) DEFAULT NULL,
	  recyclable TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  gift TINYINT(1) UNSIGNED NOT NULL DEFAULT 0,
	  gift_message TEXT,
	  mobile_theme TINYINT(1) NOT NULL DEFAULT 0,
	  total_discounts DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_paid DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_paid_tax_incl DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_paid_tax_excl DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_paid_real DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_products DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_products_wt DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  total_shipping DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  carrier_tax_rate DECIMAL(10,3) NOT NULL DEFAULT 0.00,
	  total_wrapping DECIMAL(20,6) NOT NULL DEFAULT 0.00,
	  round_mode TINYINT(1) NOT NULL DEFAULT 2,
	  round_type TINYINT(1) NOT NULL DEFAULT 1,
	  invoice_number INT(10) UNSIGNED NOT NULL DEFAULT 0,
	  delivery_number INT(10) UNSIGNED NOT NULL DEFAULT 0,
	  invoice_date DATETIME NOT NULL DEFAULT '1970-01-01 00:00:00',
	  delivery_date DATETIME NOT NULL DEFAULT '1970-01-01 00:00:00',
	  valid INT(1) UNSIGNED NOT NULL DEFAULT 0,
	  date_add DATETIME NOT NULL,
	  date_upd DATETIME NOT NULL,
	  note TEXT,
	  PRIMARY KEY (id_order),
	  KEY reference (reference),
	  KEY id_customer (id_customer),
	  KEY id_carrier (id_carrier),
	  KEY current_state (current_state),
	  KEY id_shop (id_shop),
	  KEY date_add (date_add)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_history (
	  id_order_history INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  id_employee INT(10) UNSIGNED NOT NULL,
	  id_order INT(10) UNSIGNED NOT NULL,
	  id_order_state INT(10) UNSIGNED NOT NULL,
	  date_add DATETIME NOT NULL,
	  PRIMARY KEY (id_order_history),
	  KEY order_history_order (id_order),
	  KEY id_employee (id_employee),
	  KEY id_order_state (id_order_state)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_carrier (
	  id_order_carrier INT(11) NOT NULL AUTO_INCREMENT,
	  id_order INT(11) UNSIGNED NOT NULL,
	  id_carrier INT(11) UNSIGNED NOT NULL,
	  id_order_invoice INT(11) UNSIGNED DEFAULT NULL,
	  weight DECIMAL(20,6) DEFAULT NULL,
	  shipping_cost_tax_excl DECIMAL(20,6) DEFAULT NULL,
	  shipping_cost_tax_incl DECIMAL(20,6) DEFAULT NULL,
	  tracking_number VARCHAR(64) DEFAULT NULL,
	  date_add DATETIME NOT NULL,
	  PRIMARY KEY (id_order_carrier),
	  KEY id_order (id_order),
	  KEY id_carrier (id_carrier),
	  KEY id_order_invoice (id_order_invoice)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_payment (
	  id_order_payment INT NOT NULL AUTO_INCREMENT,
	  order_reference VARCHAR(9),
	  id_currency INT UNSIGNED NOT NULL,
	  amount DECIMAL(20,6) NOT NULL,
	  payment_method VARCHAR(255) NOT NULL,
	  conversion_rate DECIMAL(13,6) NOT NULL DEFAULT 1,
	  transaction_id VARCHAR(254) NULL,
	  date_add DATETIME NOT NULL,
	  PRIMARY KEY (id_order_payment),
	  KEY order_reference (order_reference)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	// The official module's own tables (shoppingfeed 1.x).
	`CREATE TABLE IF NOT EXISTS PREFIX_shoppingfeed_order (
	  id_shoppingfeed_order INT(11) UNSIGNED NOT NULL AUTO_INCREMENT,
	  id_internal_shoppingfeed VARCHAR(50) NULL,
	  id_order_marketplace VARCHAR(255) NULL,
	  name_marketplace VARCHAR(50) NOT NULL,
	  id_order INT(10) UNSIGNED NOT NULL,
	  payment_method VARCHAR(50) NOT NULL DEFAULT '',
	  date_marketplace_creation DATETIME NULL,
	  id_shoppingfeed_token INT(11) NULL,
	  failed_ticket INT(1) NULL,
	  additionalFields MEDIUMTEXT NULL,
	  date_add DATETIME NOT NULL,
	  date_upd DATETIME NOT NULL,
	  PRIMARY KEY (id_shoppingfeed_order),
	  UNIQUE KEY id_order (id_order)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
	`CREATE TABLE IF NOT EXISTS PREFIX_shoppingfeed_token (
	  id_shoppingfeed_token INT(11) UNSIGNED NOT NULL AUTO_INCREMENT,
	  id_shop INT(11) UNSIGNED NOT NULL,
	  id_lang INT(11) UNSIGNED NOT NULL,
	  id_currency INT(11) UNSIGNED NOT NULL,
	  content VARCHAR(50) NOT NULL,
	  active TINYINT(1) NOT NULL DEFAULT 1,
	  merchant VARCHAR(100) NULL,
	  shoppingfeed_store_id VARCHAR(50) NULL,
	  feed_key VARCHAR(50) NULL,
	  date_add DATETIME NOT NULL,
	  date_upd DATETIME NOT NULL,
	  PRIMARY KEY (id_shoppingfeed_token)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
}

// Stock states of PrestaShop 8 with their flags: id, name, shipped,
// delivery, paid, invoice, logable, configuration key.
var stockStates = []struct {
	id                                      uint32
	name                                    string
	shipped, delivery, paid, invoice, logbl bool
	key                                     string
}{
	{1, "Awaiting check payment", false, false, false, false, false, "PS_OS_CHEQUE"},
	{2, "Payment accepted", false, false, true, true, true, "PS_OS_PAYMENT"},
	{3, "Processing in progress", false, true, true, true, true, "PS_OS_PREPARATION"},
	{4, "Shipped", true, true, true, true, true, "PS_OS_SHIPPING"},
	{5, "Delivered", true, true, true, true, true, "PS_OS_DELIVERED"},
	{6, "Canceled", false, false, false, false, false, "PS_OS_CANCELED"},
	{7, "Refunded", false, false, true, true, false, "PS_OS_REFUND"},
	{8, "Payment error", false, false, false, false, false, "PS_OS_ERROR"},
	{9, "On backorder (paid)", false, false, true, true, true, "PS_OS_OUTOFSTOCK_PAID"},
	{10, "Awaiting bank wire payment", false, false, false, false, false, "PS_OS_BANKWIRE"},
	{11, "Remote payment accepted", false, false, true, true, true, "PS_OS_WS_PAYMENT"},
	{12, "On backorder (not paid)", false, false, false, false, false, "PS_OS_OUTOFSTOCK_UNPAID"},
	{13, "Awaiting Cash On Delivery validation", false, false, false, false, false, "PS_OS_COD_VALIDATION"},
}

// Stock state ids, as a fresh PrestaShop 8 has them.
const (
	StatePaymentAccepted uint32 = 2
	StateProcessing      uint32 = 3
	StateShipped         uint32 = 4
	StateDelivered       uint32 = 5
	StateCanceled        uint32 = 6
	StateRefunded        uint32 = 7
)

// InstallCore creates PrestaShop's core tables and the module's order and
// token tables, and loads what a fresh install has: shop group 1, shop 1,
// language 1's stock states and their PS_OS_* keys, PS_SHOP_EMAIL and
// PS_SHOP_NAME. It does not create the tables sfsync owns (Migrate does).
func InstallCore(ctx context.Context, db *sql.DB, prefix string) error {
	for _, ddl := range coreDDL {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(ddl, "PREFIX_", prefix)); err != nil {
			return fmt.Errorf("install core tables: %w", err)
		}
	}
	f := New(db, prefix)
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+f.t("shop")).Scan(&n); err != nil {
		return fmt.Errorf("install core tables: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+f.t("shop_group")+" (id_shop_group, name) VALUES (1, 'Default')"); err != nil {
		return fmt.Errorf("install shop group: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+f.t("shop")+" (id_shop, id_shop_group, name) VALUES (1, 1, 'Shop 1')"); err != nil {
		return fmt.Errorf("install shop: %w", err)
	}
	for _, st := range stockStates {
		if _, err := db.ExecContext(ctx, "INSERT INTO "+f.t("order_state")+
			" (id_order_state, invoice, send_email, unremovable, logable, delivery, shipped, paid, color) VALUES (?, ?, 1, 1, ?, ?, ?, ?, '#4169E1')",
			st.id, st.invoice, st.logbl, st.delivery, st.shipped, st.paid); err != nil {
			return fmt.Errorf("install order state %d: %w", st.id, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO "+f.t("order_state_lang")+" (id_order_state, id_lang, name, template) VALUES (?, 1, ?, '')", st.id, st.name); err != nil {
			return fmt.Errorf("install order state %d: %w", st.id, err)
		}
		if err := f.SetConfig(ctx, Global, st.key, fmt.Sprint(st.id)); err != nil {
			return err
		}
	}
	if err := installLang(ctx, db, f); err != nil {
		return err
	}
	if err := f.SetConfig(ctx, Global, prestashop.KeyShopEmail, "merchant@example.test"); err != nil {
		return err
	}
	return f.SetConfig(ctx, Global, prestashop.KeyShopName, "Demo shop")
}

// Install creates everything: the core tables (InstallCore) and the tables
// sfsync owns (prestashop.Store.Migrate).
func Install(ctx context.Context, db *sql.DB, prefix string) error {
	if err := InstallCore(ctx, db, prefix); err != nil {
		return err
	}
	return prestashop.New(db, prefix).Migrate(ctx)
}

// InstallModuleTables creates shoppingfeed_task_order and
// shoppingfeed_processlogger exactly as the official module does, without
// sfsync's columns: a shop that ran the PHP module before sfsync.
func InstallModuleTables(ctx context.Context, db *sql.DB, prefix string) error {
	for _, ddl := range []string{
		fmt.Sprintf(prestashop.TaskOrderDDL, "`"+prefix+"shoppingfeed_task_order`"),
		fmt.Sprintf(prestashop.ProcessLoggerDDL, "`"+prefix+"shoppingfeed_processlogger`"),
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return fmt.Errorf("install module tables: %w", err)
		}
	}
	return nil
}
