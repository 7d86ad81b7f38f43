package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// SchemaVersion is the version Migrate brings the tables sfsync owns to.
// Version 2 moved the webhook's tasks out of the module's table into
// sfsync_webhook_task and gave the module its own ENUM back.
const SchemaVersion = 2

// Task actions, as the official module's ENUM spells them.
const (
	ActionSyncStatus        = "SYNC_STATUS"
	ActionCheckTicketStatus = "CHECK_TICKET_SYNC_STATUS"
	// ActionWebhook is sfsync's own kind of task, the webhook target's
	// updates. Its tasks live in sfsync_webhook_task, never in the
	// module's table: the module's cron must not see them, and its
	// re-install resets the action ENUM to its own six values (which
	// fails, or blanks the rows, when another value is in use).
	ActionWebhook = "SFSYNC_WEBHOOK"
	// ActionPartialRefund is an order slip (a partial refund made in the
	// back office) to send as a refund of its lines, and
	// ActionCheckTicketPartialRefund the same once sent, while its ticket
	// is followed: the module's own values (its ticket action does start
	// with ACTION_).
	ActionPartialRefund            = "PARTIAL_REFUND"
	ActionCheckTicketPartialRefund = "ACTION_CHECK_TICKET_PARTIAL_REFUND"
)

// CheckAction is the action a pending Shopping Feed task takes once sent:
// CHECK_TICKET_SYNC_STATUS for SYNC_STATUS, ACTION_CHECK_TICKET_PARTIAL_REFUND
// for PARTIAL_REFUND.
func CheckAction(pending string) string {
	if pending == ActionPartialRefund {
		return ActionCheckTicketPartialRefund
	}
	return ActionCheckTicketStatus
}

// PendingAction is the pending action a sent task's action continues (the
// inverse of CheckAction); a pending action is its own.
func PendingAction(action string) string {
	switch action {
	case ActionCheckTicketPartialRefund, ActionPartialRefund:
		return ActionPartialRefund
	case ActionWebhook:
		return ActionWebhook
	}
	return ActionSyncStatus
}

// In SQL: the pending actions a sender claims, and the actions of sent
// tasks whose tickets are followed.
const (
	sqlPendingActions = "('" + ActionSyncStatus + "', '" + ActionPartialRefund + "', '" + ActionWebhook + "')"
	sqlCheckActions   = "('" + ActionCheckTicketStatus + "', '" + ActionCheckTicketPartialRefund + "')"
)

// ModuleActions are the values of shoppingfeed_task_order.action as the
// module 2.3.0 declares them, in its order.
const ModuleActions = "'SYNC_STATUS','CHECK_TICKET_SYNC_STATUS','UPLOAD_INVOICE','CHECK_TICKET_UPLOAD_INVOICE','PARTIAL_REFUND','ACTION_CHECK_TICKET_PARTIAL_REFUND'"

// TaskOrderDDL creates shoppingfeed_task_order exactly as the Shopping Feed
// module 2.3.0 does (ShoppingfeedTaskOrder::$definition rendered by its
// class library: utf8, the "unique" fields in one unnamed UNIQUE KEY, the
// foreign key to the missing "order_shoppingfeedtask" table dropped);
// sfsync's own columns are added by Migrate. %s is the table name.
const TaskOrderDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_shoppingfeed_task_order` INT(10) UNSIGNED NOT NULL AUTO_INCREMENT, " +
	"`action` ENUM(" + ModuleActions + ") NOT NULL, " +
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
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

// webhookDeliveredDDL creates sfsync's record of the last state change
// delivered to the webhook target per order, so that two changes that
// leave an order in the same current state are delivered once.
const webhookDeliveredDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_order` INT(10) UNSIGNED NOT NULL," +
	"`id_order_history` INT(10) UNSIGNED NOT NULL," +
	"`status` VARCHAR(64) NOT NULL," +
	"`date_upd` DATETIME NOT NULL," +
	"PRIMARY KEY (`id_order`)" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

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
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

// webhookTaskDDL creates sfsync's table of the webhook target's tasks. Its
// columns are shoppingfeed_task_order's with sfsync's (taskColumns), by the
// same names and the module's charset (utf8, 3 bytes a character), so that
// one statement, and one UNION of both, serves both tables without mixing
// two collations (utf8mb4's default one is utf8mb4_0900_ai_ci on MySQL 8,
// utf8mb4_general_ci on MariaDB); action is always SFSYNC_WEBHOOK,
// ticket_number and batch_id stay NULL. Ids are BIGINT: the store adds
// WebhookTaskIDBase to them (see taskRow).
const webhookTaskDDL = "CREATE TABLE IF NOT EXISTS %s (" +
	"`id_shoppingfeed_task_order` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT," +
	"`action` VARCHAR(32) NOT NULL DEFAULT '" + ActionWebhook + "'," +
	"`id_order` INT(10) UNSIGNED NOT NULL," +
	"`ticket_number` VARCHAR(50) NULL DEFAULT NULL," +
	"`batch_id` VARCHAR(50) NULL DEFAULT NULL," +
	"`update_at` DATETIME NULL DEFAULT NULL," +
	"`date_add` DATETIME NOT NULL," +
	"`date_upd` DATETIME NOT NULL," +
	"`sfsync_history_first` INT UNSIGNED NULL DEFAULT NULL," +
	"`sfsync_history_last` INT UNSIGNED NULL DEFAULT NULL," +
	"`sfsync_attempts` INT UNSIGNED NOT NULL DEFAULT 0," +
	"`sfsync_claim_owner` VARCHAR(64) NULL DEFAULT NULL," +
	"`sfsync_claim_until` DATETIME(3) NULL DEFAULT NULL," +
	"`sfsync_operation` VARCHAR(16) NULL DEFAULT NULL," +
	"`sfsync_store_id` VARCHAR(32) NULL DEFAULT NULL," +
	"`sfsync_token_id` INT UNSIGNED NULL DEFAULT NULL," +
	"`sfsync_progress_at` DATETIME NULL DEFAULT NULL," +
	"`sfsync_posted_op` VARCHAR(16) NULL DEFAULT NULL," +
	"`sfsync_posted_at` DATETIME NULL DEFAULT NULL," +
	"`sfsync_posted_batch` VARCHAR(50) NULL DEFAULT NULL," +
	"`sfsync_failed_at` DATETIME NULL DEFAULT NULL," +
	"`sfsync_error` TEXT NULL," +
	"`sfsync_reported_at` DATETIME NULL DEFAULT NULL," +
	"PRIMARY KEY (`id_shoppingfeed_task_order`)," +
	"KEY `sfsync_order` (`id_order`)," +
	"KEY `sfsync_due` (`update_at`)," +
	"KEY `sfsync_failed` (`sfsync_failed_at`, `sfsync_reported_at`)" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_general_ci"

// taskCopyColumns are the columns a move from the module's table to
// sfsync_webhook_task copies (all but the id).
const taskCopyColumns = "`id_order`, `ticket_number`, `batch_id`, `update_at`, `date_add`, `date_upd`, `sfsync_history_first`, `sfsync_history_last`," +
	" `sfsync_attempts`, `sfsync_claim_owner`, `sfsync_claim_until`, `sfsync_operation`, `sfsync_store_id`, `sfsync_token_id`," +
	" `sfsync_progress_at`, `sfsync_failed_at`, `sfsync_error`, `sfsync_reported_at`"

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
	// The batch id, once Shopping Feed answered with one, is kept at once
	// (with sfsync_store_id and sfsync_token_id): the next attempt then
	// follows that batch instead of asking.
	{"sfsync_posted_op", "VARCHAR(16) NULL DEFAULT NULL"},
	{"sfsync_posted_at", "DATETIME NULL DEFAULT NULL"},
	{"sfsync_posted_batch", "VARCHAR(50) NULL DEFAULT NULL"},
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
	{"sfsync_webhook_task", webhookTaskDDL},
}

// shopTables are PrestaShop's and the module's tables sfsync reads and
// cannot create.
var shopTables = []string{"orders", "order_history", "shoppingfeed_order", "shoppingfeed_token"}

// MigrationLock is the name of the lock Migrate takes, an SQL expression
// of the table prefix (?): MySQL 8 refuses a lock name longer than 64
// characters (MariaDB does not), so the database and prefix are hashed.
const MigrationLock = "CONCAT('sfsync.migrate.', SHA1(CONCAT(DATABASE(), '.', ?)))"

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
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+MigrationLock+", 60)", s.prefix).Scan(&got); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("migrate: another process held the migration lock for 60 s")
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(rctx, "SELECT RELEASE_LOCK("+MigrationLock+")", s.prefix)
	}()
	// An ALTER waits for every open transaction on its table (metadata
	// lock), and holds back every statement that comes after it meanwhile:
	// give up after 10 s rather than stall the shop (by default it waits
	// a year on MySQL 8, a day on MariaDB); the schema watch tries again.
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 10"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(rctx, "SET SESSION lock_wait_timeout = DEFAULT")
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
	for _, c := range taskColumns {
		if err := s.addColumn(ctx, conn, task, c.name, c.def); err != nil {
			return err
		}
	}
	if err := s.restoreModuleEnum(ctx, conn); err != nil {
		return err
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

// webhookLeft selects the webhook tasks left in the module's table: rows
// sfsync's schema version 1 wrote as SFSYNC_WEBHOOK, and those a module
// re-install outside strict mode blanked to the empty string (the value
// every ENUM has for an unknown one; the module never writes it).
const webhookLeft = "action IN ('" + ActionWebhook + "', '')"

// moveWebhookTasks moves the webhook tasks left in the module's table to
// sfsync_webhook_task, in one transaction: the rows are locked, copied with
// every column, then deleted, so none is lost or doubled whoever else is
// writing. It returns how many moved.
func (s *Store) moveWebhookTasks(ctx context.Context, conn *sql.Conn) (int, error) {
	task, hooks := s.T("shoppingfeed_task_order"), s.T("sfsync_webhook_task")
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate: move webhook tasks: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT id_shoppingfeed_task_order FROM "+task+" WHERE "+webhookLeft+" ORDER BY id_shoppingfeed_task_order FOR UPDATE")
	if err != nil {
		return 0, fmt.Errorf("migrate: move webhook tasks: %w", err)
	}
	var ids []any
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("migrate: move webhook tasks: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("migrate: move webhook tasks: %w", err)
	}
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		in := " WHERE id_shoppingfeed_task_order IN (" + sqlMarks(len(chunk)) + ")"
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+hooks+" (action, "+taskCopyColumns+") SELECT '"+ActionWebhook+"', "+taskCopyColumns+
			" FROM "+task+in+" ORDER BY id_shoppingfeed_task_order", chunk...); err != nil {
			return 0, fmt.Errorf("migrate: copy webhook tasks to %s: %w", hooks, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+task+in, chunk...); err != nil {
			return 0, fmt.Errorf("migrate: move webhook tasks: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate: move webhook tasks: %w", err)
	}
	return len(ids), nil
}

// restoreModuleEnum undoes sfsync's schema version 1, which added
// SFSYNC_WEBHOOK to the module's action ENUM: the webhook tasks move to
// sfsync_webhook_task, then the value is taken out of the ENUM (the
// others, and their order, are kept). A row a worker of version 1 wrote
// meanwhile makes the ALTER fail (1265, data truncated, in strict mode):
// the move is then made again.
func (s *Store) restoreModuleEnum(ctx context.Context, conn *sql.Conn) error {
	task := s.prefix + "shoppingfeed_task_order"
	for attempt := 1; ; attempt++ {
		if _, err := s.moveWebhookTasks(ctx, conn); err != nil {
			return err
		}
		var typ, nullable string
		if err := conn.QueryRowContext(ctx, "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'action'", task).Scan(&typ, &nullable); err != nil {
			return fmt.Errorf("migrate: inspect %s.action: %w", task, err)
		}
		// MySQL 8 and MariaDB both spell it enum('A','B'), lower case,
		// no spaces.
		def, ok := withoutEnumValue(typ, ActionWebhook)
		if !ok {
			return nil
		}
		if nullable == "NO" {
			def += " NOT NULL"
		}
		_, err := conn.ExecContext(ctx, "ALTER TABLE `"+task+"` MODIFY COLUMN `action` "+def)
		if err == nil {
			return nil
		}
		var me *mysql.MySQLError
		if attempt < 5 && errors.As(err, &me) && me.Number == 1265 {
			continue
		}
		return fmt.Errorf("migrate: take %s out of %s.action: %w", ActionWebhook, task, err)
	}
}

// withoutEnumValue returns an ENUM column type without value, and whether
// value was there.
func withoutEnumValue(typ, value string) (string, bool) {
	if !strings.HasPrefix(strings.ToLower(typ), "enum(") {
		return typ, false
	}
	vals := strings.Split(typ[len("enum("):len(typ)-1], ",")
	keep := vals[:0]
	for _, v := range vals {
		if v != "'"+value+"'" {
			keep = append(keep, v)
		}
	}
	if len(keep) == len(vals) {
		return typ, false
	}
	return "ENUM(" + strings.Join(keep, ",") + ")", true
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
	default:
		if _, ok := withoutEnumValue(typ.String, ActionWebhook); ok {
			st.Missing = append(st.Missing, "the module's own values of "+task+".action (sfsync's "+ActionWebhook+" tasks move to "+s.prefix+"sfsync_webhook_task)")
			break
		}
		var left int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+s.T("shoppingfeed_task_order")+" WHERE "+webhookLeft).Scan(&left); err != nil {
			return st, fmt.Errorf("check schema: %w", err)
		}
		if left > 0 {
			st.Missing = append(st.Missing, fmt.Sprintf("the move of %d webhook tasks left in %s to %ssfsync_webhook_task", left, task, s.prefix))
		}
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
