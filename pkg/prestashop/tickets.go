package prestashop

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
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

// BatchTasks lists, by task id, the CHECK_TICKET_SYNC_STATUS tasks of a
// batch, failed ones included.
func (s *Store) BatchTasks(ctx context.Context, batchID string) ([]TicketTask, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t.id_shoppingfeed_task_order, t.id_order, COALESCE(o.id_shop, 0),
	        COALESCE(t.batch_id, ''), COALESCE(t.ticket_number, ''), COALESCE(t.sfsync_operation, ''),
	        COALESCE(t.sfsync_store_id, ''), COALESCE(t.sfsync_token_id, 0), COALESCE(t.sfsync_history_last, 0),
	        COALESCE(sf.id_internal_shoppingfeed, ''), COALESCE(sf.id_order_marketplace, ''), COALESCE(sf.name_marketplace, ''),
	        t.sfsync_failed_at IS NOT NULL, TIMESTAMPDIFF(MICROSECOND, t.date_upd, NOW(3))
	      FROM `+s.T("shoppingfeed_task_order")+` t
	      LEFT JOIN `+s.T("orders")+` o ON o.id_order = t.id_order
	      LEFT JOIN `+s.T("shoppingfeed_order")+` sf ON sf.id_order = t.id_order
	      WHERE t.batch_id = ? AND t.action = ?
	      ORDER BY t.id_shoppingfeed_task_order`, batchID, ActionCheckTicketStatus)
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
	// TicketID is recorded as the task's ticket_number when known.
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
func (s *Store) ApplyTicketResults(ctx context.Context, r TicketResults) ([]TicketOutcome, error) {
	if len(r.Outcomes) == 0 {
		return nil, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("record batch %s check: %w", r.BatchID, err)
	}
	defer tx.Rollback()
	t := s.T("shoppingfeed_task_order")

	ids := make([]any, 0, len(r.Outcomes)+2)
	ids = append(ids, r.BatchID, ActionCheckTicketStatus)
	for _, o := range r.Outcomes {
		ids = append(ids, o.TaskID)
	}
	rows, err := tx.QueryContext(ctx, "SELECT id_shoppingfeed_task_order, COALESCE(sfsync_history_last, 0) FROM "+t+
		" WHERE batch_id = ? AND action = ? AND sfsync_failed_at IS NULL AND id_shoppingfeed_task_order IN ("+sqlMarks(len(r.Outcomes))+")"+
		" ORDER BY id_shoppingfeed_task_order FOR UPDATE", ids...)
	if err != nil {
		return nil, fmt.Errorf("record batch %s check: lock tasks: %w", r.BatchID, err)
	}
	live := map[uint64]uint64{} // task → history_last
	for rows.Next() {
		var id, last uint64
		if err := rows.Scan(&id, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("record batch %s check: lock tasks: %w", r.BatchID, err)
		}
		live[id] = last
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

	// Ticket numbers first, on rows that have none: IGNORE, because the
	// module's unique key (action, id_order, ticket_number) must never fail
	// the whole check.
	var numbered []TicketOutcome
	for _, o := range applied {
		if o.TicketID != "" && o.Kind != TicketDone {
			numbered = append(numbered, o)
		}
	}
	if len(numbered) > 0 {
		var cases strings.Builder
		args := make([]any, 0, 3*len(numbered))
		for _, o := range numbered {
			cases.WriteString(" WHEN ? THEN ?")
			args = append(args, o.TaskID, truncate(o.TicketID, 50))
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
			args = append(args, o.TaskID, truncate(o.Message, 2000))
		}
		args = append(args, outcomeIDs(failed)...)
		if _, err := tx.ExecContext(ctx, "UPDATE "+t+" SET sfsync_failed_at = NOW(), sfsync_error = CASE id_shoppingfeed_task_order"+cases.String()+" END,"+
			" sfsync_reported_at = NULL, sfsync_progress_at = NOW(), date_upd = NOW()"+
			" WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(failed))+")", args...); err != nil {
			return nil, fmt.Errorf("record batch %s check: mark failed: %w", r.BatchID, err)
		}
	}

	if len(done) > 0 {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t+" WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(done))+")", outcomeIDs(done)...); err != nil {
			return nil, fmt.Errorf("record batch %s check: delete done tasks: %w", r.BatchID, err)
		}
		// A failure of the same order that an operation now applied
		// supersedes is no longer the merchant's concern: the failed task
		// carried an older change (by history id when both tasks know
		// theirs, else by task id) and goes. A newer failure stays.
		var conds []string
		var args []any
		for _, o := range done {
			last := live[o.TaskID]
			conds = append(conds, "(id_order = ? AND CASE WHEN ? > 0 AND sfsync_history_last IS NOT NULL THEN sfsync_history_last < ?"+
				" ELSE id_shoppingfeed_task_order < ? END)")
			args = append(args, o.OrderID, last, last, o.TaskID)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t+" WHERE sfsync_failed_at IS NOT NULL AND ("+strings.Join(conds, " OR ")+")", args...); err != nil {
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
			args = append(args, truncate(r.LogName, 100), o.LogMsg, level, o.OrderID, truncate(r.Session, 100))
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
	rows, err := s.db.QueryContext(ctx, `SELECT COALESCE(o.id_shop, 0),
	        SUM(t.action = ? AND t.sfsync_failed_at IS NULL),
	        SUM(t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL)
	      FROM `+s.T("shoppingfeed_task_order")+` t LEFT JOIN `+s.T("orders")+` o ON o.id_order = t.id_order
	      WHERE (t.action = ? AND t.sfsync_failed_at IS NULL) OR (t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL)
	      GROUP BY COALESCE(o.id_shop, 0)`, ActionCheckTicketStatus, ActionCheckTicketStatus)
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
