package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TicketTask is a CHECK_TICKET_SYNC_STATUS task of one Shopping Feed batch,
// with what the ticket poller needs to match its ticket and to report it.
type TicketTask struct {
	TaskID  uint64
	OrderID uint32
	// ShopID is the order's shop; 0 when the order is gone.
	ShopID       uint32
	BatchID      string
	TicketNumber string
	// Operation, StoreID and TokenID are what the sender recorded
	// (sfsync_operation, sfsync_store_id, sfsync_token_id; 0: SF_TOKEN).
	Operation string
	StoreID   string
	TokenID   uint32
	// HistoryLast is the order_history change the task carried (0: unknown).
	HistoryLast uint64
	// SFOrderID, MarketplaceRef and Channel come from shoppingfeed_order.
	SFOrderID      string
	MarketplaceRef string
	Channel        string
	// Failed is true once the task is marked failed: it is resolved.
	Failed bool
	// SinceUpdate is how long ago, by the database's clock, the task was
	// last updated (date_upd): the sender sets it when it records the batch.
	SinceUpdate time.Duration
}

// BatchTasks lists, by task id, the sent tasks of a batch
// (CHECK_TICKET_SYNC_STATUS, ACTION_CHECK_TICKET_PARTIAL_REFUND), failed
// ones included.
func (s *Store) BatchTasks(ctx context.Context, batchID string) ([]TicketTask, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id_shoppingfeed_task_order, t.id_order, COALESCE(o.id_shop, 0),
	        COALESCE(t.batch_id, ''), COALESCE(t.ticket_number, ''), COALESCE(t.sfsync_operation, ''),
	        COALESCE(t.sfsync_store_id, ''), COALESCE(t.sfsync_token_id, 0), COALESCE(t.sfsync_history_last, 0),
	        COALESCE(sf.id_internal_shoppingfeed, ''), COALESCE(sf.id_order_marketplace, ''), COALESCE(sf.name_marketplace, ''),
	        t.sfsync_failed_at IS NOT NULL, TIMESTAMPDIFF(MICROSECOND, t.date_upd, NOW(3))
	      FROM `+s.T("shoppingfeed_task_order")+` t
	      LEFT JOIN `+s.T("orders")+` o ON o.id_order = t.id_order
	      LEFT JOIN `+s.T("shoppingfeed_order")+` sf ON sf.id_order = t.id_order
	      WHERE t.batch_id = ? AND t.action IN `+sqlCheckActions+`
	      ORDER BY t.id_shoppingfeed_task_order`, batchID)
	if err != nil {
		return nil, fmt.Errorf("read tasks of batch %s: %w", batchID, err)
	}
	defer rows.Close()
	var out []TicketTask
	for rows.Next() {
		var t TicketTask
		var since int64
		if err := rows.Scan(&t.TaskID, &t.OrderID, &t.ShopID, &t.BatchID, &t.TicketNumber, &t.Operation,
			&t.StoreID, &t.TokenID, &t.HistoryLast, &t.SFOrderID, &t.MarketplaceRef, &t.Channel, &t.Failed, &since); err != nil {
			return nil, fmt.Errorf("read tasks of batch %s: %w", batchID, err)
		}
		t.SFOrderID = strings.TrimSpace(t.SFOrderID)
		t.SinceUpdate = time.Duration(since) * time.Microsecond
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tasks of batch %s: %w", batchID, err)
	}
	return out, nil
}

// TicketOutcomeKind is what a ticket check concluded for one task.
type TicketOutcomeKind int

const (
	// TicketPending leaves the task as it is and records progress.
	TicketPending TicketOutcomeKind = iota
	// TicketDone deletes the task: Shopping Feed applied (or canceled) it.
	TicketDone
	// TicketFailed keeps the task, marked failed with Message, for the report.
	TicketFailed
)

// TicketOutcome is the conclusion of a check for one task.
type TicketOutcome struct {
	TaskID  uint64
	OrderID uint32
	Kind    TicketOutcomeKind
	// TicketID is recorded as a failed task's ticket_number.
	TicketID string
	// Message is the task's sfsync_error for TicketFailed.
	Message string
	// LogMsg, when set, is the process-log line written for a done or
	// failed task (level success or error).
	LogMsg string
}

// TicketResults is everything one check of a batch concluded.
type TicketResults struct {
	BatchID string
	// LogName and Session are the process-log name and id_session.
	LogName string
	Session string
	// Outcomes has one entry per task the check looked at.
	Outcomes []TicketOutcome
}

// ApplyTicketResults records a batch check in one transaction. It locks the
// batch's unresolved tasks first, so that when several pollers check the
// same batch at once, each task is resolved (and logged) by one of them:
// an outcome for a task already resolved or gone is skipped. Done tasks are
// deleted with the failed tasks of the same order that they supersede;
// failed ones are marked for the error report; pending ones record
// progress. It returns the outcomes that were applied.
//
// The transaction runs READ COMMITTED, locks rows by primary key only, and
// is restarted when InnoDB picks it as a deadlock victim, so that checks of
// neighbouring batches and the sender's inserts do not make each other fail.
func (s *Store) ApplyTicketResults(ctx context.Context, r TicketResults) ([]TicketOutcome, error) {
	if len(r.Outcomes) == 0 {
		return nil, nil
	}
	for attempt := 1; ; attempt++ {
		applied, err := s.applyTicketResults(ctx, r)
		if err == nil {
			// A failure whose order already had a newer update applied is
			// superseded. Checked after the commit: two batches of one
			// order resolved at the same moment in two transactions do not
			// see each other, but after its own commit each sees the
			// other's.
			if err := s.SupersedeFailures(ctx, outcomeOrders(r.Outcomes)); err != nil {
				return applied, fmt.Errorf("record batch %s check: %w", r.BatchID, err)
			}
			return applied, nil
		}
		if attempt == 5 || !lockConflict(err) {
			return applied, err
		}
		t := time.NewTimer(time.Duration(attempt*(5+rand.IntN(20))) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// lockConflict reports a deadlock (1213) or lock wait timeout (1205): the
// transaction was rolled back and may simply be run again.
func lockConflict(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

func (s *Store) applyTicketResults(ctx context.Context, r TicketResults) ([]TicketOutcome, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("record batch %s check: %w", r.BatchID, err)
	}
	defer tx.Rollback()
	t := s.T("shoppingfeed_task_order")

	// Lock by primary key only: record locks, no gap locks, so that the
	// sender's inserts of other batches never wait for a check (nor
	// deadlock with it). The batch, action and failure are checked here.
	ids := make([]any, 0, len(r.Outcomes))
	for _, o := range r.Outcomes {
		ids = append(ids, o.TaskID)
	}
	rows, err := tx.QueryContext(ctx, "SELECT id_shoppingfeed_task_order, COALESCE(batch_id, ''), action, sfsync_failed_at IS NULL,"+
		" COALESCE(sfsync_history_last, 0) FROM "+t+" WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(ids))+")"+
		" ORDER BY id_shoppingfeed_task_order FOR UPDATE", ids...)
	if err != nil {
		return nil, fmt.Errorf("record batch %s check: lock tasks: %w", r.BatchID, err)
	}
	live := map[uint64]uint64{}       // task → history_last
	liveAction := map[uint64]string{} // task → its pending action
	for rows.Next() {
		var id, last uint64
		var batch, action string
		var unresolved bool
		if err := rows.Scan(&id, &batch, &action, &unresolved, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("record batch %s check: lock tasks: %w", r.BatchID, err)
		}
		if batch == r.BatchID && (action == ActionCheckTicketStatus || action == ActionCheckTicketPartialRefund) && unresolved {
			live[id], liveAction[id] = last, PendingAction(action)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record batch %s check: lock tasks: %w", r.BatchID, err)
	}

	var applied, done, failed, pending []TicketOutcome
	for _, o := range r.Outcomes {
		if _, ok := live[o.TaskID]; !ok {
			continue
		}
		applied = append(applied, o)
		switch o.Kind {
		case TicketDone:
			done = append(done, o)
		case TicketFailed:
			failed = append(failed, o)
		default:
			pending = append(pending, o)
		}
	}
	if len(applied) == 0 {
		return nil, tx.Commit()
	}

	// The ticket numbers of failed tasks, for the report and the back
	// office, on rows that have none. Only those: a change of the module's
	// unique key (action, id_order, ticket_number) takes gap locks, which
	// would make every pending check contend with its neighbours. IGNORE,
	// because that key must never fail the whole check.
	var numbered []TicketOutcome
	for _, o := range failed {
		if o.TicketID != "" {
			numbered = append(numbered, o)
		}
	}
	if len(numbered) > 0 {
		var cases strings.Builder
		args := make([]any, 0, 3*len(numbered))
		for _, o := range numbered {
			cases.WriteString(" WHEN ? THEN ?")
			args = append(args, o.TaskID, ColumnText(o.TicketID, 50))
		}
		for _, o := range numbered {
			args = append(args, o.TaskID)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE IGNORE "+t+" SET ticket_number = CASE id_shoppingfeed_task_order"+cases.String()+" END"+
			" WHERE ticket_number IS NULL AND id_shoppingfeed_task_order IN ("+sqlMarks(len(numbered))+")", args...); err != nil {
			return nil, fmt.Errorf("record batch %s check: ticket numbers: %w", r.BatchID, err)
		}
	}

	if len(pending) > 0 {
		if _, err := tx.ExecContext(ctx, "UPDATE "+t+" SET sfsync_progress_at = NOW() WHERE id_shoppingfeed_task_order IN ("+
			sqlMarks(len(pending))+")", outcomeIDs(pending)...); err != nil {
			return nil, fmt.Errorf("record batch %s check: progress: %w", r.BatchID, err)
		}
	}

	if len(failed) > 0 {
		var cases strings.Builder
		args := make([]any, 0, 3*len(failed))
		for _, o := range failed {
			cases.WriteString(" WHEN ? THEN ?")
			args = append(args, o.TaskID, ColumnText(o.Message, errorChars))
		}
		args = append(args, outcomeIDs(failed)...)
		if _, err := tx.ExecContext(ctx, "UPDATE "+t+" SET sfsync_failed_at = NOW(), sfsync_error = CASE id_shoppingfeed_task_order"+cases.String()+" END,"+
			" sfsync_reported_at = NULL, sfsync_progress_at = NOW(), date_upd = NOW()"+
			" WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(failed))+")", args...); err != nil {
			return nil, fmt.Errorf("record batch %s check: mark failed: %w", r.BatchID, err)
		}
	}

	if len(done) > 0 {
		if err := s.markDone(ctx, tx, t, "id_shoppingfeed_task_order IN ("+sqlMarks(len(done))+")", outcomeIDs(done)...); err != nil {
			return nil, fmt.Errorf("record batch %s check: %w", r.BatchID, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t+" WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(done))+")", outcomeIDs(done)...); err != nil {
			return nil, fmt.Errorf("record batch %s check: delete done tasks: %w", r.BatchID, err)
		}
		if err := s.deleteSuperseded(ctx, tx, done, live, liveAction); err != nil {
			return nil, fmt.Errorf("record batch %s check: delete superseded failures: %w", r.BatchID, err)
		}
	}

	var logs []TicketOutcome
	for _, o := range append(done, failed...) {
		if o.LogMsg != "" {
			logs = append(logs, o)
		}
	}
	if len(logs) > 0 {
		vals := make([]string, len(logs))
		args := make([]any, 0, 5*len(logs))
		for i, o := range logs {
			level := LevelSuccess
			if o.Kind == TicketFailed {
				level = LevelError
			}
			vals[i] = "(?, ?, ?, 'Order', ?, ?, NOW())"
			args = append(args, ColumnText(r.LogName, logNameChars), ColumnText(o.LogMsg, MediumTextChars), level, o.OrderID, ColumnText(r.Session, logSessionChars))
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+s.T("shoppingfeed_processlogger")+
			" (name, msg, level, object_name, object_id, id_session, date_add) VALUES "+strings.Join(vals, ","), args...); err != nil {
			return nil, fmt.Errorf("record batch %s check: process log: %w", r.BatchID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("record batch %s check: commit: %w", r.BatchID, err)
	}
	return applied, nil
}

// SupersedeFailures deletes the failed tasks of orders whose pipeline has
// finished a newer change since (their sfsync_task_done mark is above the
// failure's change): the merchant has nothing left to fix there. The
// failure's process-log line stays.
func (s *Store) SupersedeFailures(ctx context.Context, orders []uint32) error {
	if len(orders) == 0 {
		return nil
	}
	args := make([]any, 0, len(orders)+1)
	args = append(args, ActionSyncStatus)
	for _, o := range orders {
		args = append(args, o)
	}
	_, err := s.db.ExecContext(ctx, "DELETE t FROM "+s.T("shoppingfeed_task_order")+" t JOIN "+s.T("sfsync_task_done")+" d"+
		" ON d.id_order = t.id_order AND d.action = ?"+
		" WHERE t.id_order IN ("+sqlMarks(len(orders))+") AND t.sfsync_failed_at IS NOT NULL"+
		" AND t.action IN ('"+ActionSyncStatus+"', '"+ActionCheckTicketStatus+"')"+
		" AND COALESCE(t.sfsync_history_last, 0) > 0 AND d.id_order_history > t.sfsync_history_last", args...)
	if err != nil {
		return fmt.Errorf("delete superseded failures: %w", err)
	}
	return nil
}

func outcomeOrders(os []TicketOutcome) []uint32 {
	out := make([]uint32, 0, len(os))
	seen := map[uint32]bool{}
	for _, o := range os {
		if !seen[o.OrderID] {
			seen[o.OrderID] = true
			out = append(out, o.OrderID)
		}
	}
	return out
}

// deleteSuperseded deletes the failures that the done tasks supersede: a
// failed task of the same order that carried an older change (by history
// id when both tasks know theirs, else by task id) is no longer the
// merchant's concern once a newer operation was applied. A newer failure
// stays. Candidates are read without locks and deleted by primary key, so
// nothing but those rows is locked.
func (s *Store) deleteSuperseded(ctx context.Context, tx *sql.Tx, done []TicketOutcome, live map[uint64]uint64, liveAction map[uint64]string) error {
	orders := make([]any, 0, len(done))
	byOrder := map[uint32][]TicketOutcome{}
	for _, o := range done {
		if _, ok := byOrder[o.OrderID]; !ok {
			orders = append(orders, o.OrderID)
		}
		byOrder[o.OrderID] = append(byOrder[o.OrderID], o)
	}
	rows, err := tx.QueryContext(ctx, "SELECT id_shoppingfeed_task_order, id_order, COALESCE(sfsync_history_last, 0), CAST(action AS CHAR) FROM "+
		s.T("shoppingfeed_task_order")+" WHERE id_order IN ("+sqlMarks(len(orders))+") AND sfsync_failed_at IS NOT NULL", orders...)
	if err != nil {
		return err
	}
	var gone []any
	for rows.Next() {
		var id, last uint64
		var order uint32
		var action string
		if err := rows.Scan(&id, &order, &last, &action); err != nil {
			rows.Close()
			return err
		}
		for _, d := range byOrder[order] {
			if liveAction[d.TaskID] != PendingAction(action) || PendingAction(action) == ActionPartialRefund {
				// Only a newer status supersedes a failed status update;
				// nothing supersedes an order slip's refund.
				continue
			}
			mine := live[d.TaskID]
			if (mine > 0 && last > 0 && last < mine) || ((mine == 0 || last == 0) && id < d.TaskID) {
				gone = append(gone, id)
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(gone) == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM "+s.T("shoppingfeed_task_order")+" WHERE sfsync_failed_at IS NOT NULL AND id_shoppingfeed_task_order IN ("+
		sqlMarks(len(gone))+")", gone...)
	return err
}

// TicketCounts are the gauges of the ticket poller, per shop.
type TicketCounts struct {
	// Pending counts CHECK_TICKET_SYNC_STATUS tasks not resolved yet.
	Pending map[uint32]int
	// Unreported counts failed tasks (any action) not yet in a report.
	Unreported map[uint32]int
}

// TicketCounts counts pending tickets and unreported failures per shop
// (shop 0: tasks whose order is gone).
func (s *Store) TicketCounts(ctx context.Context) (TicketCounts, error) {
	c := TicketCounts{Pending: map[uint32]int{}, Unreported: map[uint32]int{}}
	part, args := s.eachTaskTable(`SELECT COALESCE(o.id_shop, 0) AS shop, t.action IN ` + sqlCheckActions + ` AND t.sfsync_failed_at IS NULL AS pending,
	        t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL AS unreported
	      FROM {tasks} t LEFT JOIN ` + s.T("orders") + ` o ON o.id_order = t.id_order
	      WHERE (t.action IN ` + sqlCheckActions + ` AND t.sfsync_failed_at IS NULL) OR (t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL)`)
	rows, err := s.db.QueryContext(ctx, "SELECT shop, SUM(pending), SUM(unreported) FROM ("+part+") u GROUP BY shop", args...)
	if err != nil {
		return c, fmt.Errorf("count tickets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var shop uint32
		var pending, unreported sql.NullInt64
		if err := rows.Scan(&shop, &pending, &unreported); err != nil {
			return c, fmt.Errorf("count tickets: %w", err)
		}
		c.Pending[shop] = int(pending.Int64)
		c.Unreported[shop] = int(unreported.Int64)
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count tickets: %w", err)
	}
	return c, nil
}

func sqlMarks(n int) string {
	if n <= 0 {
		return ""
	}
	return "?" + strings.Repeat(",?", n-1)
}

func outcomeIDs(os []TicketOutcome) []any {
	out := make([]any, len(os))
	for i, o := range os {
		out[i] = o.TaskID
	}
	return out
}
