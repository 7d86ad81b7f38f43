package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// What `sfsync status` and `sfsync retry` read and change in the task table.

// TaskCount counts one shop's tasks of one action, failed or not.
type TaskCount struct {
	ShopID uint32
	Action string
	Failed bool
	Count  int
}

// TaskCounts counts the tasks by shop, action and failure.
func (s *Store) TaskCounts(ctx context.Context) ([]TaskCount, error) {
	part, _ := s.eachTaskTable(`SELECT COALESCE(o.id_shop, 0) AS shop, CAST(t.action AS CHAR) AS action, t.sfsync_failed_at IS NOT NULL AS failed
	   FROM {tasks} t LEFT JOIN ` + s.T("orders") + ` o ON o.id_order = t.id_order`)
	rows, err := s.db.QueryContext(ctx, "SELECT shop, action, failed, COUNT(*) FROM ("+part+") u GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
	if err != nil {
		return nil, fmt.Errorf("count tasks: %w", err)
	}
	defer rows.Close()
	var out []TaskCount
	for rows.Next() {
		var c TaskCount
		if err := rows.Scan(&c.ShopID, &c.Action, &c.Failed, &c.Count); err != nil {
			return nil, fmt.Errorf("count tasks: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// OldestDue is the due time of the oldest Shopping Feed update due and not
// sent; nil when none is.
func (s *Store) OldestDue(ctx context.Context) (*time.Time, error) {
	var oldest sql.NullTime
	if err := s.db.QueryRowContext(ctx, "SELECT MIN(update_at) FROM "+s.T("shoppingfeed_task_order")+
		" WHERE action IN (?, ?) AND sfsync_failed_at IS NULL AND update_at <= NOW()", ActionSyncStatus, ActionPartialRefund).Scan(&oldest); err != nil {
		return nil, fmt.Errorf("read the oldest due update: %w", err)
	}
	if !oldest.Valid {
		return nil, nil
	}
	return &oldest.Time, nil
}

// PendingTickets counts the orders whose ticket is followed, and their
// batches.
func (s *Store) PendingTickets(ctx context.Context) (orders, batches int, err error) {
	err = s.db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT batch_id) FROM "+s.T("shoppingfeed_task_order")+
		" WHERE action IN "+sqlCheckActions+" AND sfsync_failed_at IS NULL").Scan(&orders, &batches)
	if err != nil {
		return 0, 0, fmt.Errorf("count pending tickets: %w", err)
	}
	return orders, batches, nil
}

// RecentFailure is a failed task as `sfsync status` lists it.
type RecentFailure struct {
	OrderID   uint32
	Reference string
	Operation string
	Error     string
	At        time.Time
}

// RecentFailures lists the newest failed tasks, newest first.
func (s *Store) RecentFailures(ctx context.Context, limit int) ([]RecentFailure, error) {
	part, _ := s.eachTaskTable(`SELECT t.id_order AS id_order, COALESCE(o.reference, '') AS reference, COALESCE(t.sfsync_operation, '') AS operation,
	     COALESCE(t.sfsync_error, '') AS error_msg, t.sfsync_failed_at AS failed_at
	   FROM {tasks} t LEFT JOIN ` + s.T("orders") + ` o ON o.id_order = t.id_order
	   WHERE t.sfsync_failed_at IS NOT NULL`)
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM ("+part+") u ORDER BY failed_at DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("list failures: %w", err)
	}
	defer rows.Close()
	var out []RecentFailure
	for rows.Next() {
		var f RecentFailure
		if err := rows.Scan(&f.OrderID, &f.Reference, &f.Operation, &f.Error, &f.At); err != nil {
			return nil, fmt.Errorf("list failures: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Requeued is an order whose failed update `sfsync retry` queued again.
type Requeued struct {
	OrderID uint32
	ShopID  uint32
	// Action is the pending task's: SYNC_STATUS, or SFSYNC_WEBHOOK for a
	// failed webhook update (it stays a webhook task).
	Action string
}

// RequeueFailed queues the failed tasks of one order (orderID 0: of every
// order) again as pending tasks due now, one per order and action: a failed
// row whose order already has a pending update of its action is superseded
// by it and deleted. It returns each order and action once, in task order;
// with nothing failed, an empty list.
func (s *Store) RequeueFailed(ctx context.Context, orderID uint32) ([]Requeued, error) {
	q := "SELECT {task_id} AS id, t.id_order AS id_order, COALESCE(o.id_shop, 0) AS shop, CAST(t.action AS CHAR) AS action FROM {tasks} t LEFT JOIN " + s.T("orders") +
		" o ON o.id_order = t.id_order WHERE t.sfsync_failed_at IS NOT NULL"
	var args []any
	if orderID != 0 {
		q += " AND t.id_order = ?"
		args = append(args, orderID)
	}
	part, args := s.eachTaskTable(q, args...)
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM ("+part+") u ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("list failed tasks: %w", err)
	}
	type failed struct {
		id uint64
		Requeued
	}
	var fs []failed
	for rows.Next() {
		var f failed
		if err := rows.Scan(&f.id, &f.OrderID, &f.ShopID, &f.Action); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list failed tasks: %w", err)
		}
		// A sent task is re-queued as the pending task it continues; any
		// other Shopping Feed action (the module's invoices) as SYNC_STATUS.
		f.Action = PendingAction(f.Action)
		fs = append(fs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list failed tasks: %w", err)
	}
	var out []Requeued
	for _, f := range fs {
		seen := slices.ContainsFunc(out, func(r Requeued) bool { return r.OrderID == f.OrderID && r.Action == f.Action })
		if err := s.requeue(ctx, f.id, f.Requeued, seen); err != nil {
			return out, err
		}
		if !seen {
			out = append(out, f.Requeued)
		}
	}
	return out, nil
}

// requeue turns one failed row into its order's pending task, or deletes it
// when the order has one already (superseded).
func (s *Store) requeue(ctx context.Context, taskID uint64, f Requeued, superseded bool) error {
	t, id := s.taskRow(taskID)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var pending int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t+" WHERE action = ? AND id_order = ? AND sfsync_failed_at IS NULL AND id_shoppingfeed_task_order <> ? FOR UPDATE",
		f.Action, f.OrderID, id).Scan(&pending); err != nil {
		return err
	}
	if (pending > 0 || superseded) && f.Action != ActionPartialRefund {
		// (A partial refund is one order slip's lines, not the order's
		// state: another pending one does not cover it.)
		// The order already has a pending update, which sends its
		// current state: the failed row is superseded.
		_, err = tx.ExecContext(ctx, "DELETE FROM "+t+" WHERE id_shoppingfeed_task_order = ?", id)
	} else {
		_, err = tx.ExecContext(ctx, "UPDATE "+t+" SET action = ?, ticket_number = NULL, batch_id = NULL, update_at = NOW(), date_upd = NOW(),"+
			" sfsync_attempts = 0, sfsync_failed_at = NULL, sfsync_error = NULL, sfsync_reported_at = NULL, sfsync_progress_at = NOW(),"+
			" sfsync_claim_owner = NULL, sfsync_claim_until = NULL WHERE id_shoppingfeed_task_order = ?", f.Action, id)
	}
	if err != nil {
		return fmt.Errorf("re-queue task %d: %w", taskID, err)
	}
	return tx.Commit()
}

// OrderTasks counts an order's task rows and its failed ones, with the
// newest failure's reason ("" when none): what a person checks in the
// back office after a change.
func (s *Store) OrderTasks(ctx context.Context, orderID uint32) (total, failed int, lastErr string, err error) {
	var msg sql.NullString
	err = s.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(sfsync_failed_at IS NOT NULL), 0), MAX(sfsync_error) FROM "+s.T("shoppingfeed_task_order")+
		" WHERE id_order = ?", orderID).Scan(&total, &failed, &msg)
	if err != nil {
		return 0, 0, "", fmt.Errorf("count the tasks of order %d: %w", orderID, err)
	}
	return total, failed, msg.String, nil
}

// TicketOutcome is the level (success or error) of the newest ticket
// outcome line of an order in the process log, under the module's
// order-sync process (not the "Ticket created" line of a send); "" when
// there is none yet.
func (s *Store) TicketOutcome(ctx context.Context, orderID uint32) (string, error) {
	var level string
	err := s.db.QueryRowContext(ctx, "SELECT level FROM "+s.T("shoppingfeed_processlogger")+" WHERE object_id = ? AND name = ? AND level IN (?, ?)"+
		" AND msg NOT LIKE '%Ticket created%' ORDER BY id_shoppingfeed_processlogger DESC LIMIT 1",
		orderID, ProcessOrderSync, LevelSuccess, LevelError).Scan(&level)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the ticket outcome of order %d: %w", orderID, err)
	}
	return level, nil
}
