package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is the version Migrate brings the tables sfsync owns to.
const SchemaVersion = 1

// Task actions, as the official module's ENUM spells them.
const (
	ActionSyncStatus        = "SYNC_STATUS"
	ActionCheckTicketStatus = "CHECK_TICKET_SYNC_STATUS"
	// ActionWebhook is sfsync's own action for updates to the webhook
	// target: an ENUM value the module does not know, so that its cron
	// never sends them to Shopping Feed.
	ActionWebhook = "SFSYNC_WEBHOOK"
)

// TaskOrderDDL creates shoppingfeed_task_order exactly as the Shopping Feed
// module 2.3.0 does (ShoppingfeedTaskOrder::$definition rendered by its
// class library: utf8, the "unique" fields in one unnamed UNIQUE KEY, the
// foreign key to the missing "order_shoppingfeedtask" table dropped);
// sfsync's own columns are added by Migrate. %s is the table name.
const TaskOrderDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_shoppingfeed_task_order` INT(10) UNSIGNED NOT NULL AUTO_INCREMENT, " +
	"`action` ENUM('SYNC_STATUS','CHECK_TICKET_SYNC_STATUS','UPLOAD_INVOICE','CHECK_TICKET_UPLOAD_INVOICE','PARTIAL_REFUND','ACTION_CHECK_TICKET_PARTIAL_REFUND') NOT NULL, " +
	"`id_order` INT(10) UNSIGNED NOT NULL, " +
	"`ticket_number` VARCHAR(50), " +
	"`batch_id` VARCHAR(50), " +
	"`update_at` DATETIME, " +
	"`date_add` DATETIME NOT NULL, " +
	"`date_upd` DATETIME NOT NULL, " +
	"PRIMARY KEY (`id_shoppingfeed_task_order`), " +
	"UNIQUE KEY (`action`, `id_order`, `ticket_number`)" +
	") ENGINE=InnoDB CHARSET=utf8 COLLATE=utf8_general_ci"

// ProcessLoggerDDL creates shoppingfeed_processlogger exactly as the module
// 2.3.0 does (its class library's ProcessLoggerObjectModel): object_name
// is NOT NULL, id_session VARCHAR(255) NULL, the table utf8.
const ProcessLoggerDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_shoppingfeed_processlogger` INT(10) UNSIGNED NOT NULL AUTO_INCREMENT, " +
	"`name` VARCHAR(100) NOT NULL, " +
	"`msg` MEDIUMTEXT NOT NULL, " +
	"`level` VARCHAR(10) NOT NULL, " +
	"`object_name` VARCHAR(100) NOT NULL, " +
	"`object_id` INT(10) UNSIGNED, " +
	"`id_session` VARCHAR(255), " +
	"`date_add` DATETIME NOT NULL, " +
	"PRIMARY KEY (`id_shoppingfeed_processlogger`)" +
	") ENGINE=InnoDB CHARSET=utf8 COLLATE=utf8_general_ci"

// metaDDL creates sfsync's own table of settings it keeps about itself.
const metaDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`name` VARCHAR(64) NOT NULL," +
	"`value` TEXT NULL," +
	"`date_upd` DATETIME NOT NULL," +
	"PRIMARY KEY (`name`)" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

// webhookDeliveredDDL creates sfsync's record of the last state change
// delivered to the webhook target per order, so that two changes that
// leave an order in the same current state are delivered once.
const webhookDeliveredDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_order` INT(10) UNSIGNED NOT NULL," +
	"`id_order_history` INT(10) UNSIGNED NOT NULL," +
	"`status` VARCHAR(64) NOT NULL," +
	"`date_upd` DATETIME NOT NULL," +
	"PRIMARY KEY (`id_order`)" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

// taskDoneDDL creates sfsync's record of the highest order_history id
// whose update each order's pipeline finished (sent and confirmed, or
// found to need nothing): a change read again after its task was deleted
// (a detector resuming behind its last batch, a broker that lost its
// store, a replay) must not send the same update twice.
const taskDoneDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_order` INT(10) UNSIGNED NOT NULL," +
	"`action` VARCHAR(32) NOT NULL," +
	"`id_order_history` BIGINT UNSIGNED NOT NULL," +
	"`date_upd` DATETIME NOT NULL," +
	"PRIMARY KEY (`id_order`, `action`)," +
	"KEY `sfsync_done_date` (`date_upd`)" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

// taskColumns are the columns sfsync adds to shoppingfeed_task_order: all
// nullable or defaulted, so the module's INSERTs keep working.
var taskColumns = []struct{ name, def string }{
	// The order_history rows that created and last updated the task.
	{"sfsync_history_first", "INT UNSIGNED NULL DEFAULT NULL"},
	{"sfsync_history_last", "INT UNSIGNED NULL DEFAULT NULL"},
	// Send attempts so far, and the claim that keeps two senders apart.
	{"sfsync_attempts", "INT UNSIGNED NOT NULL DEFAULT 0"},
	{"sfsync_claim_owner", "VARCHAR(64) NULL DEFAULT NULL"},
	{"sfsync_claim_until", "DATETIME(3) NULL DEFAULT NULL"},
	// What was sent, to which store, and when sfsync last moved the task on.
	{"sfsync_operation", "VARCHAR(16) NULL DEFAULT NULL"},
	{"sfsync_store_id", "VARCHAR(32) NULL DEFAULT NULL"},
	{"sfsync_token_id", "INT UNSIGNED NULL DEFAULT NULL"},
	{"sfsync_progress_at", "DATETIME NULL DEFAULT NULL"},
	// An operation POSTed whose outcome is not recorded yet (the intent):
	// the next attempt asks Shopping Feed whether it was applied first.
	{"sfsync_posted_op", "VARCHAR(16) NULL DEFAULT NULL"},
	{"sfsync_posted_at", "DATETIME NULL DEFAULT NULL"},
	// A failure: when, why, and when it went into a report.
	{"sfsync_failed_at", "DATETIME NULL DEFAULT NULL"},
	{"sfsync_error", "TEXT NULL"},
	{"sfsync_reported_at", "DATETIME NULL DEFAULT NULL"},
}

// index is an index sfsync adds to a table.
type index struct{ name, cols string }

var taskIndexes = []index{
	{"sfsync_due", "`action`, `update_at`"},
	{"sfsync_order", "`id_order`, `action`"},
	{"sfsync_batch", "`batch_id`"},
	{"sfsync_failed", "`sfsync_failed_at`, `sfsync_reported_at`"},
}

var logIndexes = []index{
	{"sfsync_object", "`object_name`, `object_id`"},
}

// ownTables are the tables Migrate creates when missing (the module's two
// as the module does, for shops that never ran it), by name.
var ownTables = []struct{ name, ddl string }{
	{"shoppingfeed_task_order", TaskOrderDDL},
	{"shoppingfeed_processlogger", ProcessLoggerDDL},
	{"sfsync_meta", metaDDL},
	{"sfsync_webhook_delivered", webhookDeliveredDDL},
	{"sfsync_task_done", taskDoneDDL},
}

// shopTables are PrestaShop's and the module's tables sfsync reads and
// cannot create.
var shopTables = []string{"orders", "order_history", "shoppingfeed_order", "shoppingfeed_token"}

// Migrate creates the tables sfsync owns when missing and adds its columns
// and indexes to the module's tables when missing. It never touches a core
// table. It needs CREATE, ALTER and INDEX: run it once as an admin (`sfsync
// migrate`); workers only call it when CheckSchema finds something missing
// (MIGRATE=auto). Several processes may run it at once: they take turns on
// a named lock, and every step checks before it changes anything.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	lock := "sfsync_migrate_" + s.prefix
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT(LEFT(DATABASE(), 32), '.', ?), 60)", lock).Scan(&got); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("migrate: another process held the migration lock for 60 s")
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(rctx, "SELECT RELEASE_LOCK(CONCAT(LEFT(DATABASE(), 32), '.', ?))", lock)
	}()
	for _, t := range ownTables {
		ok, err := s.exists(ctx, conn, tableQuery, s.prefix+t.name)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if ok {
			continue
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(t.ddl, s.T(t.name))); err != nil {
			return fmt.Errorf("migrate: create table %s: %w", s.prefix+t.name, err)
		}
	}
	task := s.prefix + "shoppingfeed_task_order"
	if err := s.addEnumValue(ctx, conn, task, "action", ActionWebhook); err != nil {
		return err
	}
	for _, c := range taskColumns {
		if err := s.addColumn(ctx, conn, task, c.name, c.def); err != nil {
			return err
		}
	}
	for _, ix := range taskIndexes {
		if err := s.addIndex(ctx, conn, task, ix.name, ix.cols); err != nil {
			return err
		}
	}
	for _, ix := range logIndexes {
		if err := s.addIndex(ctx, conn, s.prefix+"shoppingfeed_processlogger", ix.name, ix.cols); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO "+s.T("sfsync_meta")+" (name, value, date_upd) VALUES ('schema_version', ?, NOW())"+
		" ON DUPLICATE KEY UPDATE value = VALUES(value), date_upd = VALUES(date_upd)", SchemaVersion); err != nil {
		return fmt.Errorf("migrate: record schema version: %w", err)
	}
	return nil
}

// What information_schema is asked.
const (
	tableQuery  = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
	columnQuery = "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?"
	indexQuery  = "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?"
)

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return false, fmt.Errorf("inspect %v: %w", args, err)
	}
	return n > 0, nil
}

func (s *Store) addColumn(ctx context.Context, conn *sql.Conn, table, column, def string) error {
	if ok, err := s.exists(ctx, conn, columnQuery, table, column); err != nil || ok {
		return err
	}
	if _, err := conn.ExecContext(ctx, "ALTER TABLE `"+table+"` ADD COLUMN `"+column+"` "+def); err != nil {
		return fmt.Errorf("migrate: add column %s.%s: %w", table, column, err)
	}
	return nil
}

// addEnumValue adds value to an ENUM column's values when missing, keeping
// the others and their order.
func (s *Store) addEnumValue(ctx context.Context, conn *sql.Conn, table, column, value string) error {
	var typ, nullable string
	if err := conn.QueryRowContext(ctx, "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, column).Scan(&typ, &nullable); err != nil {
		return fmt.Errorf("migrate: inspect %s.%s: %w", table, column, err)
	}
	if !strings.HasPrefix(strings.ToLower(typ), "enum(") || strings.Contains(typ, "'"+value+"'") {
		return nil
	}
	def := typ[:len(typ)-1] + ",'" + value + "')"
	if nullable == "NO" {
		def += " NOT NULL"
	}
	if _, err := conn.ExecContext(ctx, "ALTER TABLE `"+table+"` MODIFY COLUMN `"+column+"` "+def); err != nil {
		return fmt.Errorf("migrate: add %s to %s.%s: %w", value, table, column, err)
	}
	return nil
}

func (s *Store) addIndex(ctx context.Context, conn *sql.Conn, table, name, cols string) error {
	if ok, err := s.exists(ctx, conn, indexQuery, table, name); err != nil || ok {
		return err
	}
	if _, err := conn.ExecContext(ctx, "ALTER TABLE `"+table+"` ADD INDEX `"+name+"` ("+cols+")"); err != nil {
		return fmt.Errorf("migrate: add index %s.%s: %w", table, name, err)
	}
	return nil
}

// SchemaStatus describes what Migrate would change; empty Missing means up
// to date.
type SchemaStatus struct {
	Version int
	// Missing names each table, column, index or value sfsync needs that
	// is not there; ShopMissing those of them Migrate cannot create
	// (PrestaShop's and the module's own tables).
	Missing     []string
	ShopMissing []string
}

// CheckSchema reports what Migrate would add (and the shop tables it
// cannot), without changing anything. It needs no more than SELECT on the
// shop database.
func (s *Store) CheckSchema(ctx context.Context) (SchemaStatus, error) {
	var st SchemaStatus
	missing := func(what, query string, args ...any) error {
		ok, err := s.exists(ctx, s.db, query, args...)
		if err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
		if !ok {
			st.Missing = append(st.Missing, what)
		}
		return nil
	}
	for _, t := range shopTables {
		before := len(st.Missing)
		if err := missing("table "+s.prefix+t, tableQuery, s.prefix+t); err != nil {
			return st, err
		}
		if len(st.Missing) > before {
			st.ShopMissing = append(st.ShopMissing, st.Missing[before])
			st.Missing = st.Missing[:before]
		}
	}
	for _, t := range ownTables {
		if err := missing("table "+s.prefix+t.name, tableQuery, s.prefix+t.name); err != nil {
			return st, err
		}
	}
	task, log := s.prefix+"shoppingfeed_task_order", s.prefix+"shoppingfeed_processlogger"
	for _, c := range taskColumns {
		if err := missing("column "+task+"."+c.name, columnQuery, task, c.name); err != nil {
			return st, err
		}
	}
	for _, ix := range taskIndexes {
		if err := missing("index "+task+"."+ix.name, indexQuery, task, ix.name); err != nil {
			return st, err
		}
	}
	for _, ix := range logIndexes {
		if err := missing("index "+log+"."+ix.name, indexQuery, log, ix.name); err != nil {
			return st, err
		}
	}
	var typ sql.NullString
	err := s.db.QueryRowContext(ctx, "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'action'", task).Scan(&typ)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return st, fmt.Errorf("check schema: %w", err)
	case !strings.Contains(typ.String, "'"+ActionWebhook+"'"):
		st.Missing = append(st.Missing, "value "+ActionWebhook+" of "+task+".action")
	}
	var v sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT value FROM "+s.T("sfsync_meta")+" WHERE name = 'schema_version'").Scan(&v); err == nil {
		fmt.Sscan(v.String, &st.Version)
	}
	if len(st.Missing) == 0 && st.Version < SchemaVersion {
		st.Missing = append(st.Missing, fmt.Sprintf("schema version %d (have %d)", SchemaVersion, st.Version))
	}
	return st, nil
}
