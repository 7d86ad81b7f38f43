package prestashop

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// TaskChange is a state change that saves an order's SYNC_STATUS task.
type TaskChange struct {
	OrderID   uint32
	HistoryID uint64
	// UpdateAt is when the update is due (the module's update_at).
	UpdateAt time.Time
}

const inChunk = 500

// WebhookTaskIDBase is added to the id of a row of sfsync_webhook_task to
// make its task id, as the store's callers, the events and the dedup ids
// see it. The module's ids are INT UNSIGNED, below it: a task id names
// its table, and no two tasks share one.
const WebhookTaskIDBase uint64 = 1 << 32

// taskTable returns the table that holds the tasks of action, and the base
// of their task ids.
func (s *Store) taskTable(action string) (string, uint64) {
	if action == ActionWebhook {
		return s.T("sfsync_webhook_task"), WebhookTaskIDBase
	}
	return s.T("shoppingfeed_task_order"), 0
}

// taskRow returns the table that holds a task and the row's id there.
func (s *Store) taskRow(taskID uint64) (string, uint64) {
	if taskID >= WebhookTaskIDBase {
		return s.T("sfsync_webhook_task"), taskID - WebhookTaskIDBase
	}
	return s.T("shoppingfeed_task_order"), taskID
}

// byTable groups task ids by the table that holds them, as row ids.
func (s *Store) byTable(ids []uint64) map[string][]any {
	out := map[string][]any{}
	for _, id := range ids {
		t, row := s.taskRow(id)
		out[t] = append(out[t], row)
	}
	return out
}

// eachTaskTable renders q once per task table and joins them with UNION
// ALL: in q, {tasks} stands for the table and {task_id} for the task id of
// its row t. args are given to each part.
func (s *Store) eachTaskTable(q string, args ...any) (string, []any) {
	parts := make([]string, 0, 2)
	all := make([]any, 0, 2*len(args))
	for _, tt := range []struct {
		table string
		base  uint64
	}{{s.T("shoppingfeed_task_order"), 0}, {s.T("sfsync_webhook_task"), WebhookTaskIDBase}} {
		r := strings.NewReplacer("{tasks}", tt.table, "{task_id}", fmt.Sprintf("(t.id_shoppingfeed_task_order + %d)", tt.base))
		parts = append(parts, "("+r.Replace(q)+")")
		all = append(all, args...)
	}
	return strings.Join(parts, " UNION ALL "), all
}

// UpsertSyncTasks saves the SYNC_STATUS task of every order in changes, as
// the module's hook does: an order with a pending task has its update_at
// moved to the newest change's, any other order gets a new task. Per order
// the change with the highest history id wins, and a change older than the
// one a task already holds is ignored, so replaying the log is harmless. A
// task that had failed is re-queued: its attempts and failure are cleared.
// It returns each order's task id.
func (s *Store) UpsertSyncTasks(ctx context.Context, changes []TaskChange) (map[uint32]uint64, error) {
	return s.UpsertTasks(ctx, ActionSyncStatus, changes)
}

// UpsertTasks is UpsertSyncTasks for the pending tasks of any action
// (SYNC_STATUS for Shopping Feed, in the module's table; SFSYNC_WEBHOOK for
// the webhook target, in sfsync_webhook_task).
func (s *Store) UpsertTasks(ctx context.Context, action string, changes []TaskChange) (map[uint32]uint64, error) {
	latest := map[uint32]TaskChange{}
	first := map[uint32]uint64{}
	for _, c := range changes {
		if l, ok := latest[c.OrderID]; !ok || c.HistoryID > l.HistoryID {
			latest[c.OrderID] = c
		}
		if f, ok := first[c.OrderID]; !ok || c.HistoryID < f {
			first[c.OrderID] = c.HistoryID
		}
	}
	ids := make([]uint32, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	out := make(map[uint32]uint64, len(ids))
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("save tasks: %w", err)
	}
	defer tx.Rollback()
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		if err := s.upsertChunk(ctx, tx, action, chunk, latest, first, out); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("save tasks: commit: %w", err)
	}
	return out, nil
}

func (s *Store) upsertChunk(ctx context.Context, tx *sql.Tx, action string, orders []uint32, latest map[uint32]TaskChange, first map[uint32]uint64, out map[uint32]uint64) error {
	t, base := s.taskTable(action)
	existing, err := taskIDs(ctx, tx, t, action, orders, true)
	if err != nil {
		return err
	}
	var missing []uint32
	for _, o := range orders {
		if _, ok := existing[o]; !ok {
			missing = append(missing, o)
		}
	}
	handled, err := s.handledUpTo(ctx, tx, action, missing)
	if err != nil {
		return err
	}
	var upd, ins []uint32
	for _, o := range orders {
		e, ok := existing[o]
		switch {
		case !ok && latest[o].HistoryID <= handled[o]:
			// Read again after its update went out (or was found
			// needless): no new task, so no second send.
		case !ok:
			ins = append(ins, o)
		case e.last < latest[o].HistoryID:
			upd = append(upd, o)
			out[o] = base + e.id
		default:
			out[o] = base + e.id
		}
	}
	if len(upd) > 0 {
		// An upsert on the primary key updates them all in one statement,
		// linear in the rows (a CASE with one WHEN per row is quadratic).
		// VALUES() works on MySQL 5.7 and 8 and on MariaDB.
		vals := make([]string, len(upd))
		args := make([]any, 0, len(upd)*4)
		for i, o := range upd {
			vals[i] = "(?, ?, ?, ?, NOW(), NOW(), ?)"
			args = append(args, existing[o].id, action, o, latest[o].UpdateAt, latest[o].HistoryID)
		}
		q := "INSERT INTO " + t + " (id_shoppingfeed_task_order, action, id_order, update_at, date_add, date_upd, sfsync_history_last) VALUES " +
			strings.Join(vals, ",") + " ON DUPLICATE KEY UPDATE update_at = VALUES(update_at)," +
			" sfsync_history_first = COALESCE(sfsync_history_first, sfsync_history_last)," +
			" sfsync_history_last = VALUES(sfsync_history_last)," +
			" date_upd = NOW(), sfsync_progress_at = NOW(), sfsync_attempts = 0," +
			" sfsync_failed_at = NULL, sfsync_error = NULL, sfsync_reported_at = NULL"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("save tasks: update: %w", err)
		}
	}
	if len(ins) > 0 {
		vals := make([]string, len(ins))
		args := make([]any, 0, len(ins)*4)
		for i, o := range ins {
			vals[i] = "(?, ?, ?, NOW(), NOW(), ?, ?, NOW())"
			args = append(args, action, o, latest[o].UpdateAt, first[o], latest[o].HistoryID)
		}
		q := "INSERT INTO " + t + " (action, id_order, update_at, date_add, date_upd, sfsync_history_first, sfsync_history_last, sfsync_progress_at) VALUES " + strings.Join(vals, ",")
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("save tasks: insert: %w", err)
		}
		created, err := taskIDs(ctx, tx, t, action, ins, false)
		if err != nil {
			return err
		}
		for o, e := range created {
			out[o] = base + e.id
		}
	}
	return nil
}

type taskRef struct {
	id   uint64
	last uint64
}

// taskIDs returns each order's pending task of action (the oldest when a
// shop has several).
func taskIDs(ctx context.Context, tx *sql.Tx, table, action string, orders []uint32, lock bool) (map[uint32]taskRef, error) {
	args := make([]any, 0, len(orders)+1)
	args = append(args, action)
	for _, o := range orders {
		args = append(args, o)
	}
	q := "SELECT id_shoppingfeed_task_order, id_order, COALESCE(sfsync_history_last, 0) FROM " + table +
		" WHERE action = ? AND id_order IN (?" + strings.Repeat(",?", len(orders)-1) + ")"
	if action == ActionPartialRefund {
		// A failed partial refund is retried by sfsync retry only: a new
		// slip makes a task of its own rather than sending the failed
		// slip's lines again with it.
		q += " AND sfsync_failed_at IS NULL"
	}
	q += " ORDER BY id_shoppingfeed_task_order"
	if lock {
		q += " FOR UPDATE"
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("save tasks: read: %w", err)
	}
	defer rows.Close()
	m := map[uint32]taskRef{}
	for rows.Next() {
		var id, last uint64
		var o uint32
		if err := rows.Scan(&id, &o, &last); err != nil {
			return nil, fmt.Errorf("save tasks: read: %w", err)
		}
		if _, seen := m[o]; !seen {
			m[o] = taskRef{id: id, last: last}
		}
	}
	return m, rows.Err()
}

// StuckTask is a task that made no progress for a while: its message was
// lost, or nobody was there to handle it.
type StuckTask struct {
	TaskID    uint64
	Action    string
	OrderID   uint32
	ShopID    uint32
	BatchID   string
	Operation string
	StoreID   string
	TokenID   uint32
}

// StuckTasks lists, oldest first, due pending tasks (SYNC_STATUS,
// PARTIAL_REFUND, SFSYNC_WEBHOOK) and unresolved sent ones (their ticket
// checks) that are not failed, not claimed, and made no progress for
// `after`.
func (s *Store) StuckTasks(ctx context.Context, after time.Duration, limit int) ([]StuckTask, error) {
	part, args := s.eachTaskTable(`SELECT {task_id} AS id, t.action AS action, t.id_order AS id_order, COALESCE(o.id_shop, 0) AS id_shop,
	        COALESCE(t.batch_id, '') AS batch_id, COALESCE(t.sfsync_operation, '') AS operation, COALESCE(t.sfsync_store_id, '') AS store_id,
	        COALESCE(t.sfsync_token_id, 0) AS token_id, COALESCE(t.sfsync_progress_at, t.date_upd) AS progress
	      FROM {tasks} t LEFT JOIN `+s.T("orders")+` o ON o.id_order = t.id_order
	      WHERE t.sfsync_failed_at IS NULL
	        AND COALESCE(t.sfsync_progress_at, t.date_upd) < NOW() - INTERVAL ? SECOND
	        AND (t.sfsync_claim_until IS NULL OR t.sfsync_claim_until < NOW(3))
	        AND ((t.action IN `+sqlPendingActions+` AND (t.update_at IS NULL OR t.update_at <= NOW()))
	          OR (t.action IN `+sqlCheckActions+` AND t.batch_id IS NOT NULL))`,
		int64(after/time.Second))
	rows, err := s.db.QueryContext(ctx, "SELECT id, action, id_order, id_shop, batch_id, operation, store_id, token_id FROM ("+part+") u ORDER BY progress, id LIMIT ?",
		append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list stuck tasks: %w", err)
	}
	defer rows.Close()
	var out []StuckTask
	for rows.Next() {
		var st StuckTask
		if err := rows.Scan(&st.TaskID, &st.Action, &st.OrderID, &st.ShopID, &st.BatchID, &st.Operation, &st.StoreID, &st.TokenID); err != nil {
			return nil, fmt.Errorf("list stuck tasks: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// TouchTasks records progress on tasks (sfsync_progress_at = now).
func (s *Store) TouchTasks(ctx context.Context, ids []uint64) error {
	for t, rows := range s.byTable(ids) {
		for start := 0; start < len(rows); start += inChunk {
			chunk := rows[start:min(start+inChunk, len(rows))]
			if _, err := s.db.ExecContext(ctx, "UPDATE "+t+" SET sfsync_progress_at = NOW() WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(chunk))+")", chunk...); err != nil {
				return fmt.Errorf("touch tasks: %w", err)
			}
		}
	}
	return nil
}

// execer is a *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// markDone records that the tasks matched by where finished: every change
// of their orders up to each task's last history id is handled. It runs
// in the transaction that deletes them, so a task is never gone without
// its mark. A ticket check continues its pending task (PendingAction).
// table is the tasks' table.
func (s *Store) markDone(ctx context.Context, q execer, table, where string, args ...any) error {
	_, err := q.ExecContext(ctx, "INSERT INTO "+s.T("sfsync_task_done")+" (id_order, action, id_order_history, date_upd)"+
		" SELECT id_order, CASE action WHEN '"+ActionCheckTicketStatus+"' THEN '"+ActionSyncStatus+"'"+
		" WHEN '"+ActionCheckTicketPartialRefund+"' THEN '"+ActionPartialRefund+"' ELSE action END, COALESCE(sfsync_history_last, 0), NOW()"+
		" FROM "+table+" WHERE "+where+
		" ON DUPLICATE KEY UPDATE id_order_history = GREATEST(id_order_history, VALUES(id_order_history)), date_upd = VALUES(date_upd)", args...)
	if err != nil {
		return fmt.Errorf("mark tasks done: %w", err)
	}
	return nil
}

// handledUpTo returns, for orders with no pending task of action, the
// highest history id their pipeline already covers: a finished task's
// mark, or a task of action that was sent and waits on its ticket. For
// PARTIAL_REFUND the ids are order slip ids.
func (s *Store) handledUpTo(ctx context.Context, tx *sql.Tx, action string, orders []uint32) (map[uint32]uint64, error) {
	out := map[uint32]uint64{}
	if len(orders) == 0 {
		return out, nil
	}
	marks := "?" + strings.Repeat(",?", len(orders)-1)
	args := make([]any, 0, 2*len(orders)+2)
	args = append(args, action)
	for _, o := range orders {
		args = append(args, o)
	}
	q := "SELECT id_order, id_order_history FROM " + s.T("sfsync_task_done") + " WHERE action = ? AND id_order IN (" + marks + ")"
	if action == ActionSyncStatus || action == ActionPartialRefund {
		q += " UNION ALL SELECT id_order, COALESCE(sfsync_history_last, 0) FROM " + s.T("shoppingfeed_task_order") +
			" WHERE action = ? AND id_order IN (" + marks + ")"
		args = append(args, CheckAction(action))
		for _, o := range orders {
			args = append(args, o)
		}
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("save tasks: read handled changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o uint32
		var h uint64
		if err := rows.Scan(&o, &h); err != nil {
			return nil, fmt.Errorf("save tasks: read handled changes: %w", err)
		}
		out[o] = max(out[o], h)
	}
	return out, rows.Err()
}
