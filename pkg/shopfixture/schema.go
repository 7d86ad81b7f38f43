// Package shopfixture creates the tables sfsync reads and writes exactly as
// PrestaShop 8 and the Shopping Feed module 2.3.0 create them (see psDDL,
// moduleDDL and prestashop.TaskOrderDDL for which source each follows), and
// seeds shops, carriers, states, Shopping Feed orders and tokens for the
// tests, the demo and the chaos run. ChangeState changes an order's state
// exactly as PrestaShop does.
package shopfixture

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// PrestaShop 8's tables, as a PrestaShop 8.x install creates them (PREFIX_
// is replaced by the table prefix):
//   - from install-dev/data/db_structure.sql of 8.x (utf8mb4; ENGINE_TYPE is
//     InnoDB and COLLATION utf8mb4_general_ci): configuration,
//     configuration_lang, currency, module, module_shop, carrier,
//     order_state, order_state_lang, orders, order_history, order_carrier,
//     order_payment, order_detail, order_slip, order_slip_detail;
//   - product as a live PrestaShop 8 install on MariaDB 10.6 has it (its
//     dump: column order, keys reference_idx and supplier_reference_idx),
//     and product_supplier from db_structure.sql with 8.0's 64-character
//     references (not checked against a live install): the partial
//     refund reads a product's reference from them;
//   - from the Doctrine entities of src/PrestaShopBundle/Entity (Shop,
//     ShopGroup, Lang), as Doctrine's MySQL platform renders them: signed
//     INT ids, no column defaults; no foreign key between shop and
//     shop_group is created here (not checked against a live install), and
//     the signed ids are why the module's token cannot reference shop.
//
// Column for column, type for type, keys included, for every table sfsync
// reads or writes and the few the seed writes besides. PrestaShop's own
// sessions run with an empty sql_mode (db_structure.sql starts so); the
// tests run strict, so the seed fills every NOT NULL column without a
// default, as PrestaShop's ObjectModel does.
var psDDL = []string{
	`CREATE TABLE IF NOT EXISTS PREFIX_shop_group (
	  id_shop_group INT AUTO_INCREMENT NOT NULL,
	  name VARCHAR(64) NOT NULL,
	  color VARCHAR(50) NOT NULL,
	  share_customer TINYINT(1) NOT NULL,
	  share_order TINYINT(1) NOT NULL,
	  share_stock TINYINT(1) NOT NULL,
	  active TINYINT(1) NOT NULL,
	  deleted TINYINT(1) NOT NULL,
	  PRIMARY KEY (id_shop_group)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_shop (
	  id_shop INT AUTO_INCREMENT NOT NULL,
	  id_shop_group INT NOT NULL,
	  name VARCHAR(64) NOT NULL,
	  color VARCHAR(50) NOT NULL,
	  id_category INT NOT NULL,
	  theme_name VARCHAR(255) NOT NULL,
	  active TINYINT(1) NOT NULL,
	  deleted TINYINT(1) NOT NULL,
	  INDEX IDX_CBDFBB9EF5C9E40 (id_shop_group),
	  PRIMARY KEY (id_shop)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_lang (
	  id_lang INT AUTO_INCREMENT NOT NULL,
	  name VARCHAR(32) NOT NULL,
	  active TINYINT(1) NOT NULL,
	  iso_code VARCHAR(2) NOT NULL,
	  language_code VARCHAR(5) NOT NULL,
	  locale VARCHAR(5) NOT NULL,
	  date_format_lite VARCHAR(32) NOT NULL,
	  date_format_full VARCHAR(32) NOT NULL,
	  is_rtl TINYINT(1) NOT NULL,
	  PRIMARY KEY (id_lang)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_currency (
	  id_currency int(10) unsigned NOT NULL auto_increment,
	  name varchar(64) NOT NULL,
	  iso_code varchar(3) NOT NULL DEFAULT '0',
	  numeric_iso_code varchar(3),
	  ` + "`precision`" + ` int(2) NOT NULL DEFAULT 6,
	  conversion_rate decimal(13,6) NOT NULL,
	  deleted tinyint(1) unsigned NOT NULL DEFAULT '0',
	  active tinyint(1) unsigned NOT NULL DEFAULT '1',
	  unofficial tinyint(1) unsigned NOT NULL DEFAULT '0',
	  modified tinyint(1) unsigned NOT NULL DEFAULT '0',
	  PRIMARY KEY (id_currency),
	  KEY currency_iso_code (iso_code)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_configuration (
	  id_configuration int(10) unsigned NOT NULL auto_increment,
	  id_shop_group INT(11) UNSIGNED DEFAULT NULL,
	  id_shop INT(11) UNSIGNED DEFAULT NULL,
	  name varchar(254) NOT NULL,
	  value text,
	  date_add datetime NOT NULL,
	  date_upd datetime NOT NULL,
	  PRIMARY KEY (id_configuration),
	  KEY name (name),
	  KEY id_shop (id_shop),
	  KEY id_shop_group (id_shop_group)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_configuration_lang (
	  id_configuration int(10) unsigned NOT NULL,
	  id_lang int(10) unsigned NOT NULL,
	  value text,
	  date_upd datetime DEFAULT NULL,
	  PRIMARY KEY (id_configuration, id_lang)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_module (
	  id_module int(10) unsigned NOT NULL auto_increment,
	  name varchar(64) NOT NULL,
	  active tinyint(1) unsigned NOT NULL DEFAULT '0',
	  version VARCHAR(8) NOT NULL,
	  PRIMARY KEY (id_module),
	  UNIQUE KEY name_UNIQUE (name),
	  KEY name (name)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_module_shop (
	  id_module INT(11) UNSIGNED NOT NULL,
	  id_shop INT(11) UNSIGNED NOT NULL,
	  enable_device TINYINT(1) NOT NULL DEFAULT '7',
	  PRIMARY KEY (id_module, id_shop),
	  KEY id_shop (id_shop)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_carrier (
	  id_carrier int(10) unsigned NOT NULL AUTO_INCREMENT,
	  id_reference int(10) unsigned NOT NULL,
	  name varchar(64) NOT NULL,
	  url varchar(255) DEFAULT NULL,
	  active tinyint(1) unsigned NOT NULL DEFAULT '0',
	  deleted tinyint(1) unsigned NOT NULL DEFAULT '0',
	  shipping_handling tinyint(1) unsigned NOT NULL DEFAULT '1',
	  range_behavior tinyint(1) unsigned NOT NULL DEFAULT '0',
	  is_module tinyint(1) unsigned NOT NULL DEFAULT '0',
	  is_free tinyint(1) unsigned NOT NULL DEFAULT '0',
	  shipping_external tinyint(1) unsigned NOT NULL DEFAULT '0',
	  need_range tinyint(1) unsigned NOT NULL DEFAULT '0',
	  external_module_name varchar(64) DEFAULT NULL,
	  shipping_method int(2) NOT NULL DEFAULT '0',
	  position int(10) unsigned NOT NULL DEFAULT '0',
	  max_width int(10) DEFAULT '0',
	  max_height int(10) DEFAULT '0',
	  max_depth int(10) DEFAULT '0',
	  max_weight DECIMAL(20, 6) DEFAULT '0',
	  grade int(10) DEFAULT '0',
	  PRIMARY KEY (id_carrier),
	  KEY deleted (deleted, active),
	  KEY reference (id_reference, deleted, active)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_state (
	  id_order_state int(10) UNSIGNED NOT NULL auto_increment,
	  invoice tinyint(1) UNSIGNED DEFAULT '0',
	  send_email tinyint(1) UNSIGNED NOT NULL DEFAULT '0',
	  module_name VARCHAR(255) NULL DEFAULT NULL,
	  color varchar(32) DEFAULT NULL,
	  unremovable tinyint(1) UNSIGNED NOT NULL,
	  hidden tinyint(1) UNSIGNED NOT NULL DEFAULT '0',
	  logable tinyint(1) NOT NULL DEFAULT '0',
	  delivery tinyint(1) UNSIGNED NOT NULL DEFAULT '0',
	  shipped tinyint(1) UNSIGNED NOT NULL DEFAULT '0',
	  paid tinyint(1) UNSIGNED NOT NULL DEFAULT '0',
	  pdf_invoice tinyint(1) UNSIGNED NOT NULL default '0',
	  pdf_delivery tinyint(1) UNSIGNED NOT NULL default '0',
	  deleted tinyint(1) UNSIGNED NOT NULL DEFAULT '0',
	  PRIMARY KEY (id_order_state),
	  KEY module_name (module_name)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_state_lang (
	  id_order_state int(10) unsigned NOT NULL,
	  id_lang int(10) unsigned NOT NULL,
	  name varchar(64) NOT NULL,
	  template varchar(64) NOT NULL,
	  PRIMARY KEY (id_order_state, id_lang)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_orders (
	  id_order int(10) unsigned NOT NULL auto_increment,
	  reference VARCHAR(9),
	  id_shop_group INT(11) UNSIGNED NOT NULL DEFAULT '1',
	  id_shop INT(11) UNSIGNED NOT NULL DEFAULT '1',
	  id_carrier int(10) unsigned NOT NULL,
	  id_lang int(10) unsigned NOT NULL,
	  id_customer int(10) unsigned NOT NULL,
	  id_cart int(10) unsigned NOT NULL,
	  id_currency int(10) unsigned NOT NULL,
	  id_address_delivery int(10) unsigned NOT NULL,
	  id_address_invoice int(10) unsigned NOT NULL,
	  current_state int(10) unsigned NOT NULL,
	  secure_key varchar(32) NOT NULL DEFAULT '-1',
	  payment varchar(255) NOT NULL,
	  conversion_rate decimal(13, 6) NOT NULL DEFAULT 1,
	  module varchar(255) DEFAULT NULL,
	  recyclable tinyint(1) unsigned NOT NULL DEFAULT '0',
	  gift tinyint(1) unsigned NOT NULL DEFAULT '0',
	  gift_message text,
	  mobile_theme tinyint(1) NOT NULL DEFAULT '0',
	  total_discounts decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_discounts_tax_incl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_discounts_tax_excl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_paid decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_paid_tax_incl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_paid_tax_excl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_paid_real decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_products decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_products_wt decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_shipping decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_shipping_tax_incl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_shipping_tax_excl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  carrier_tax_rate DECIMAL(10, 3) NOT NULL DEFAULT '0.00',
	  total_wrapping decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_wrapping_tax_incl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  total_wrapping_tax_excl decimal(20, 6) NOT NULL DEFAULT '0.00',
	  round_mode tinyint(1) NOT NULL DEFAULT '2',
	  round_type tinyint(1) NOT NULL DEFAULT '1',
	  invoice_number int(10) unsigned NOT NULL DEFAULT '0',
	  delivery_number int(10) unsigned NOT NULL DEFAULT '0',
	  invoice_date datetime NOT NULL,
	  delivery_date datetime NOT NULL,
	  valid int(1) unsigned NOT NULL DEFAULT '0',
	  date_add datetime NOT NULL,
	  date_upd datetime NOT NULL,
	  note text,
	  PRIMARY KEY (id_order),
	  KEY reference (reference),
	  KEY id_customer (id_customer),
	  KEY id_cart (id_cart),
	  KEY invoice_number (invoice_number),
	  KEY id_carrier (id_carrier),
	  KEY id_lang (id_lang),
	  KEY id_currency (id_currency),
	  KEY id_address_delivery (id_address_delivery),
	  KEY id_address_invoice (id_address_invoice),
	  KEY id_shop_group (id_shop_group),
	  KEY current_state (current_state),
	  KEY id_shop (id_shop),
	  INDEX date_add (date_add),
	  INDEX invoice_date (invoice_date)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_history (
	  id_order_history int(10) unsigned NOT NULL auto_increment,
	  id_employee int(10) unsigned NOT NULL,
	  id_order int(10) unsigned NOT NULL,
	  id_order_state int(10) unsigned NOT NULL,
	  date_add datetime NOT NULL,
	  PRIMARY KEY (id_order_history),
	  KEY order_history_order (id_order),
	  KEY id_employee (id_employee),
	  KEY id_order_state (id_order_state)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_carrier (
	  id_order_carrier int(11) NOT NULL AUTO_INCREMENT,
	  id_order int(11) unsigned NOT NULL,
	  id_carrier int(11) unsigned NOT NULL,
	  id_order_invoice int(11) unsigned DEFAULT NULL,
	  weight DECIMAL(20, 6) DEFAULT NULL,
	  shipping_cost_tax_excl decimal(20, 6) DEFAULT NULL,
	  shipping_cost_tax_incl decimal(20, 6) DEFAULT NULL,
	  tracking_number varchar(64) DEFAULT NULL,
	  date_add datetime NOT NULL,
	  PRIMARY KEY (id_order_carrier),
	  KEY id_order (id_order),
	  KEY id_carrier (id_carrier),
	  KEY id_order_invoice (id_order_invoice)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_payment (
	  id_order_payment INT NOT NULL auto_increment,
	  order_reference VARCHAR(9),
	  id_currency INT UNSIGNED NOT NULL,
	  amount DECIMAL(20, 6) NOT NULL,
	  payment_method varchar(255) NOT NULL,
	  conversion_rate decimal(13, 6) NOT NULL DEFAULT 1,
	  transaction_id VARCHAR(254) NULL,
	  card_number VARCHAR(254) NULL,
	  card_brand VARCHAR(254) NULL,
	  card_expiration CHAR(7) NULL,
	  card_holder VARCHAR(254) NULL,
	  date_add DATETIME NOT NULL,
	  id_employee INT NULL,
	  PRIMARY KEY (id_order_payment),
	  KEY order_reference (order_reference)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_detail (
	  id_order_detail int(10) unsigned NOT NULL auto_increment,
	  id_order int(10) unsigned NOT NULL,
	  id_order_invoice int(11) DEFAULT NULL,
	  id_warehouse int(10) unsigned DEFAULT '0',
	  id_shop int(11) unsigned NOT NULL,
	  product_id int(10) unsigned NOT NULL,
	  product_attribute_id int(10) unsigned DEFAULT NULL,
	  id_customization int(10) unsigned DEFAULT 0,
	  product_name text NOT NULL,
	  product_quantity int(10) unsigned NOT NULL DEFAULT '0',
	  product_quantity_in_stock int(10) NOT NULL DEFAULT '0',
	  product_quantity_refunded int(10) unsigned NOT NULL DEFAULT '0',
	  product_quantity_return int(10) unsigned NOT NULL DEFAULT '0',
	  product_quantity_reinjected int(10) unsigned NOT NULL DEFAULT '0',
	  product_price decimal(20, 6) NOT NULL DEFAULT '0.000000',
	  reduction_percent DECIMAL(5, 2) NOT NULL DEFAULT '0.00',
	  reduction_amount DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  reduction_amount_tax_incl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  reduction_amount_tax_excl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  group_reduction DECIMAL(5, 2) NOT NULL DEFAULT '0.00',
	  product_quantity_discount decimal(20, 6) NOT NULL DEFAULT '0.000000',
	  product_ean13 varchar(13) DEFAULT NULL,
	  product_isbn varchar(32) DEFAULT NULL,
	  product_upc varchar(12) DEFAULT NULL,
	  product_mpn varchar(40) DEFAULT NULL,
	  product_reference varchar(64) DEFAULT NULL,
	  product_supplier_reference varchar(64) DEFAULT NULL,
	  product_weight DECIMAL(20, 6) NOT NULL,
	  id_tax_rules_group INT(11) UNSIGNED DEFAULT '0',
	  tax_computation_method tinyint(1) unsigned NOT NULL DEFAULT '0',
	  tax_name varchar(16) NOT NULL,
	  tax_rate DECIMAL(10, 3) NOT NULL DEFAULT '0.000',
	  ecotax decimal(17, 6) NOT NULL DEFAULT '0.000000',
	  ecotax_tax_rate DECIMAL(5, 3) NOT NULL DEFAULT '0.000',
	  discount_quantity_applied TINYINT(1) NOT NULL DEFAULT '0',
	  download_hash varchar(255) DEFAULT NULL,
	  download_nb int(10) unsigned DEFAULT '0',
	  download_deadline datetime DEFAULT NULL,
	  total_price_tax_incl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  total_price_tax_excl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  unit_price_tax_incl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  unit_price_tax_excl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  total_shipping_price_tax_incl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  total_shipping_price_tax_excl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  purchase_supplier_price DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  original_product_price DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  original_wholesale_price DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  total_refunded_tax_excl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  total_refunded_tax_incl DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  PRIMARY KEY (id_order_detail),
	  KEY order_detail_order (id_order),
	  KEY product_id (product_id, product_attribute_id),
	  KEY product_attribute_id (product_attribute_id),
	  KEY id_tax_rules_group (id_tax_rules_group),
	  KEY id_order_id_order_detail (id_order, id_order_detail)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_slip (
	  id_order_slip int(10) unsigned NOT NULL auto_increment,
	  conversion_rate decimal(13, 6) NOT NULL DEFAULT 1,
	  id_customer int(10) unsigned NOT NULL,
	  id_order int(10) unsigned NOT NULL,
	  total_products_tax_excl DECIMAL(20, 6) NULL,
	  total_products_tax_incl DECIMAL(20, 6) NULL,
	  total_shipping_tax_excl DECIMAL(20, 6) NULL,
	  total_shipping_tax_incl DECIMAL(20, 6) NULL,
	  shipping_cost tinyint(3) unsigned NOT NULL DEFAULT '0',
	  amount DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  shipping_cost_amount DECIMAL(20, 6) NOT NULL DEFAULT '0.000000',
	  ` + "`partial`" + ` TINYINT(1) NOT NULL,
	  order_slip_type TINYINT(1) unsigned NOT NULL DEFAULT '0',
	  date_add datetime NOT NULL,
	  date_upd datetime NOT NULL,
	  PRIMARY KEY (id_order_slip),
	  KEY order_slip_customer (id_customer),
	  KEY id_order (id_order)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	`CREATE TABLE IF NOT EXISTS PREFIX_order_slip_detail (
	  id_order_slip int(10) unsigned NOT NULL,
	  id_order_detail int(10) unsigned NOT NULL,
	  product_quantity int(10) unsigned NOT NULL DEFAULT '0',
	  unit_price_tax_excl DECIMAL(20, 6) NULL,
	  unit_price_tax_incl DECIMAL(20, 6) NULL,
	  total_price_tax_excl DECIMAL(20, 6) NULL,
	  total_price_tax_incl DECIMAL(20, 6),
	  amount_tax_excl DECIMAL(20, 6) DEFAULT NULL,
	  amount_tax_incl DECIMAL(20, 6) DEFAULT NULL,
	  PRIMARY KEY (id_order_slip, id_order_detail)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`,
	"CREATE TABLE IF NOT EXISTS PREFIX_product (" +
		"`id_product` int(10) UNSIGNED NOT NULL AUTO_INCREMENT, `id_supplier` int(10) UNSIGNED NULL, `id_manufacturer` int(10) UNSIGNED NULL," +
		" `id_category_default` int(10) UNSIGNED NULL, `id_shop_default` int(10) UNSIGNED NOT NULL DEFAULT 1, `id_tax_rules_group` int(11) UNSIGNED NOT NULL," +
		" `on_sale` tinyint(1) UNSIGNED NOT NULL DEFAULT 0, `online_only` tinyint(1) UNSIGNED NOT NULL DEFAULT 0, `ean13` varchar(13) NULL, `upc` varchar(12) NULL," +
		" `mpn` varchar(40) NULL, `ecotax` decimal(17, 6) NOT NULL DEFAULT 0.000000, `quantity` int(10) NOT NULL DEFAULT 0," +
		" `minimal_quantity` int(10) UNSIGNED NOT NULL DEFAULT 1, `low_stock_threshold` int(10) NULL, `low_stock_alert` tinyint(1) NOT NULL DEFAULT 0," +
		" `price` decimal(20, 6) NOT NULL DEFAULT 0.000000, `wholesale_price` decimal(20, 6) NOT NULL DEFAULT 0.000000, `unity` varchar(255) NULL," +
		" `unit_price_ratio` decimal(20, 6) NOT NULL DEFAULT 0.000000, `additional_shipping_cost` decimal(20, 6) NOT NULL DEFAULT 0.000000," +
		" `reference` varchar(64) NULL, `supplier_reference` varchar(64) NULL, `location` varchar(255) NOT NULL DEFAULT ''," +
		" `width` decimal(20, 6) NOT NULL DEFAULT 0.000000, `height` decimal(20, 6) NOT NULL DEFAULT 0.000000, `depth` decimal(20, 6) NOT NULL DEFAULT 0.000000," +
		" `weight` decimal(20, 6) NOT NULL DEFAULT 0.000000, `out_of_stock` int(10) UNSIGNED NOT NULL DEFAULT 2," +
		" `additional_delivery_times` tinyint(1) UNSIGNED NOT NULL DEFAULT 1, `quantity_discount` tinyint(1) DEFAULT 0, `customizable` tinyint(2) NOT NULL DEFAULT 0," +
		" `uploadable_files` tinyint(4) NOT NULL DEFAULT 0, `text_fields` tinyint(4) NOT NULL DEFAULT 0, `active` tinyint(1) UNSIGNED NOT NULL DEFAULT 0," +
		" `redirect_type` enum('404', '301-product', '302-product', '301-category', '302-category') NOT NULL DEFAULT '404'," +
		" `id_type_redirected` int(10) NOT NULL DEFAULT 0, `available_for_order` tinyint(1) NOT NULL DEFAULT 1, `available_date` date NULL," +
		" `show_condition` tinyint(1) NOT NULL DEFAULT 0, `condition` enum('new', 'used', 'refurbished') NOT NULL DEFAULT 'new'," +
		" `show_price` tinyint(1) NOT NULL DEFAULT 1, `indexed` tinyint(1) NOT NULL DEFAULT 0," +
		" `visibility` enum('both', 'catalog', 'search', 'none') NOT NULL DEFAULT 'both', `cache_is_pack` tinyint(1) NOT NULL DEFAULT 0," +
		" `cache_has_attachments` tinyint(1) NOT NULL DEFAULT 0, `is_virtual` tinyint(1) NOT NULL DEFAULT 0, `cache_default_attribute` int(10) UNSIGNED NULL," +
		" `date_add` datetime NOT NULL, `date_upd` datetime NOT NULL, `advanced_stock_management` tinyint(1) NOT NULL DEFAULT 0," +
		" `pack_stock_type` int(11) UNSIGNED NOT NULL DEFAULT 3, `isbn` varchar(32) NULL, `state` int(10) UNSIGNED NOT NULL DEFAULT 1," +
		" `product_type` enum('standard', 'pack', 'virtual', 'combinations') NOT NULL DEFAULT 'standard'," +
		" PRIMARY KEY (`id_product`), KEY `product_supplier` (`id_supplier`), KEY `product_manufacturer` (`id_manufacturer`, `id_product`)," +
		" KEY `id_category_default` (`id_category_default`), KEY `indexed` (`indexed`), KEY `date_add` (`date_add`), KEY `state` (`state`, `date_upd`)," +
		" KEY `reference_idx` (`reference`), KEY `supplier_reference_idx` (`supplier_reference`)" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
	"CREATE TABLE IF NOT EXISTS PREFIX_product_supplier (" +
		"`id_product_supplier` int(11) unsigned NOT NULL AUTO_INCREMENT, `id_product` int(11) unsigned NOT NULL," +
		" `id_product_attribute` int(11) unsigned NOT NULL DEFAULT '0', `id_supplier` int(11) unsigned NOT NULL," +
		" `product_supplier_reference` varchar(64) DEFAULT NULL, `product_supplier_price_te` decimal(20,6) NOT NULL DEFAULT '0.000000'," +
		" `id_currency` int(11) unsigned NOT NULL, PRIMARY KEY (`id_product_supplier`)," +
		" UNIQUE KEY `id_product` (`id_product`,`id_product_attribute`,`id_supplier`), KEY `id_supplier` (`id_supplier`,`id_product`)" +
		") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
}

// The Shopping Feed module 2.3.0's order and token tables. The module has
// no install SQL: its class library (vendor/totpsclasslib, Db/
// ObjectModelDefinition) renders each ObjectModel's $definition: charset
// utf8 (3-byte), collation utf8_general_ci; TYPE_INT is INT(10) UNSIGNED
// when the validator's name says unsigned, else INT(10) SIGNED; TYPE_STRING
// VARCHAR(size, default 255); TYPE_HTML MEDIUMTEXT; a column is NOT NULL
// unless allow_null (and not required); "unique" fields make one unnamed
// UNIQUE KEY; each HAS_ONE association a foreign key, added after the
// table and dropped silently when it cannot be made. For the token table
// only the currency's succeeds: "language" is no table, and shop.id_shop
// is a signed INT (Doctrine) that an INT UNSIGNED cannot reference.
// shoppingfeed_task_order and shoppingfeed_processlogger are in
// prestashop.TaskOrderDDL and prestashop.ProcessLoggerDDL (sfsync creates
// them when missing).
var moduleDDL = []string{
	"CREATE TABLE IF NOT EXISTS `PREFIX_shoppingfeed_order` (" +
		"`id_shoppingfeed_order` INT(10) UNSIGNED NOT NULL AUTO_INCREMENT, " +
		"`id_internal_shoppingfeed` VARCHAR(50), " +
		"`id_order_marketplace` VARCHAR(255), " +
		"`name_marketplace` VARCHAR(50) NOT NULL, " +
		"`id_order` INT(10) UNSIGNED NOT NULL, " +
		"`payment_method` VARCHAR(50) NOT NULL, " +
		"`date_marketplace_creation` DATETIME, " +
		"`id_shoppingfeed_token` INT(10) SIGNED NOT NULL, " +
		"`failed_ticket` INT(10) SIGNED, " +
		"`additionalFields` MEDIUMTEXT, " +
		"`date_add` DATETIME NOT NULL, " +
		"`date_upd` DATETIME NOT NULL, " +
		"PRIMARY KEY (`id_shoppingfeed_order`), " +
		"UNIQUE KEY (`id_order`)" +
		") ENGINE=InnoDB CHARSET=utf8 COLLATE=utf8_general_ci",
	"CREATE TABLE IF NOT EXISTS `PREFIX_shoppingfeed_token` (" +
		"`id_shoppingfeed_token` INT(10) UNSIGNED NOT NULL AUTO_INCREMENT, " +
		"`id_shop` INT(10) UNSIGNED NOT NULL, " +
		"`id_lang` INT(10) UNSIGNED NOT NULL, " +
		"`id_currency` INT(10) UNSIGNED NOT NULL, " +
		"`content` VARCHAR(255) NOT NULL, " +
		"`active` TINYINT(1) UNSIGNED NOT NULL, " +
		"`merchant` VARCHAR(100) NOT NULL, " +
		"`shoppingfeed_store_id` INT(10) UNSIGNED NOT NULL, " +
		"`feed_key` VARCHAR(50) NOT NULL, " +
		"`date_add` DATETIME NOT NULL, " +
		"`date_upd` DATETIME NOT NULL, " +
		"PRIMARY KEY (`id_shoppingfeed_token`), " +
		"UNIQUE KEY (`content`, `feed_key`)" +
		") ENGINE=InnoDB CHARSET=utf8 COLLATE=utf8_general_ci",
}

// tokenCurrencyFK is the one foreign key the module's library manages to add.
const tokenCurrencyFK = "ALTER TABLE `PREFIX_shoppingfeed_token` ADD FOREIGN KEY (`id_currency`) REFERENCES `PREFIX_currency` (`id_currency`) ON UPDATE CASCADE ON DELETE CASCADE"

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

// InstallCore creates PrestaShop's tables and the module's order and token
// tables, and loads what a fresh install has: shop group 1, shop 1,
// language 1, currency 1 (EUR), language 1's stock states and their
// PS_OS_* keys, PS_SHOP_EMAIL and PS_SHOP_NAME. It does not create the
// module's task and log tables (InstallModuleTables) nor the tables sfsync
// owns (Migrate).
func InstallCore(ctx context.Context, db *sql.DB, prefix string) error {
	for _, ddl := range append(append([]string(nil), psDDL...), moduleDDL...) {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(ddl, "PREFIX_", prefix)); err != nil {
			return fmt.Errorf("install core tables: %w", err)
		}
	}
	var fks int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?",
		prefix+"shoppingfeed_token").Scan(&fks); err != nil {
		return fmt.Errorf("install core tables: %w", err)
	}
	if fks == 0 {
		if _, err := db.ExecContext(ctx, strings.ReplaceAll(tokenCurrencyFK, "PREFIX_", prefix)); err != nil {
			return fmt.Errorf("install core tables: token foreign key: %w", err)
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
	if _, err := f.CreateShopGroup(ctx, "Default"); err != nil {
		return fmt.Errorf("install shop group: %w", err)
	}
	if _, err := f.CreateShop(ctx, 1, "Shop 1"); err != nil {
		return fmt.Errorf("install shop: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+f.t("lang")+
		" (id_lang, name, active, iso_code, language_code, locale, date_format_lite, date_format_full, is_rtl) VALUES (1, 'English (English)', 1, 'en', 'en-us', 'en-US', 'm/d/Y', 'm/d/Y H:i:s', 0)"); err != nil {
		return fmt.Errorf("install language: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+f.t("currency")+
		" (id_currency, name, iso_code, numeric_iso_code, `precision`, conversion_rate) VALUES (1, 'Euro', 'EUR', '978', 2, 1)"); err != nil {
		return fmt.Errorf("install currency: %w", err)
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
	if err := installLang(ctx, f); err != nil {
		return err
	}
	if err := f.SetConfig(ctx, Global, prestashop.KeyShopEmail, "merchant@example.test"); err != nil {
		return err
	}
	return f.SetConfig(ctx, Global, prestashop.KeyShopName, "Demo shop")
}

// Install creates everything: PrestaShop's and the module's tables
// (InstallCore, InstallModuleTables), then sfsync's columns, indexes and
// tables on top (prestashop.Store.Migrate).
func Install(ctx context.Context, db *sql.DB, prefix string) error {
	if err := InstallCore(ctx, db, prefix); err != nil {
		return err
	}
	if err := InstallModuleTables(ctx, db, prefix); err != nil {
		return err
	}
	return prestashop.New(db, prefix).Migrate(ctx)
}

// InstallModuleTables creates shoppingfeed_task_order and
// shoppingfeed_processlogger exactly as the official module 2.3.0 does,
// without sfsync's columns: a shop that ran the PHP module before sfsync.
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
