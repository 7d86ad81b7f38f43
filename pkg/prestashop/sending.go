package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SyncTask is an order's pending SYNC_STATUS task as the sender sees it.
type SyncTask struct {
	ID        uint64
	OrderID   uint32
	UpdateAt  time.Time
	DateAdd   time.Time
	First     uint64 // sfsync_history_first
	Last      uint64 // sfsync_history_last: the change the task holds
	Attempts  int
	Failed    bool
	ClaimedBy string
	// ClaimUntil is when another sender's claim lapses (zero: unclaimed).
	ClaimUntil time.Time
	// PostedOp is an operation an earlier attempt POSTed without its
	// outcome being recorded (a sender that died, an answer that could not
	// be read): it may have reached Shopping Feed. "" when none.
	PostedOp string
	// PostedAge is how long ago, in the database's clock, that POST left
	// (to the second).
	PostedAge time.Duration
	// PostedBatch is the batch Shopping Feed answered that POST with,
	// when the sender could keep it before it stopped; PostedStore and
	// PostedToken are where it went. "" when unknown.
	PostedBatch string
	PostedStore string
	PostedToken uint32
	// Now is the database clock when the task was read.
	Now time.Time
}

// Due reports whether the task's update is due.
func (t SyncTask) Due() bool { return !t.UpdateAt.After(t.Now) }

// Claimed reports whether another sender holds the task now.
func (t SyncTask) Claimed() bool { return t.ClaimedBy != "" && t.ClaimUntil.After(t.Now) }

// PendingTask reads an order's pending task of action (SYNC_STATUS,
// PARTIAL_REFUND or SFSYNC_WEBHOOK); ErrNotFound when there is none.
func (s *Store) PendingTask(ctx context.Context, action string, orderID uint32) (SyncTask, error) {
	var t SyncTask
	var upd sql.NullTime
	var failed sql.NullTime
	var owner sql.NullString
	var until sql.NullTime
	table, base := s.taskTable(action)
	err := s.db.QueryRowContext(ctx, `SELECT id_shoppingfeed_task_order, id_order, update_at, date_add,
	        COALESCE(sfsync_history_first, 0), COALESCE(sfsync_history_last, 0), sfsync_attempts, sfsync_failed_at,
	        sfsync_claim_owner, sfsync_claim_until, NOW(3)
	      FROM `+table+` WHERE action = ? AND id_order = ? ORDER BY sfsync_failed_at IS NOT NULL, id_shoppingfeed_task_order LIMIT 1`,
		action, orderID).
		Scan(&t.ID, &t.OrderID, &upd, &t.DateAdd, &t.First, &t.Last, &t.Attempts, &failed, &owner, &until, &t.Now)
	if errors.Is(err, sql.ErrNoRows) {
		return SyncTask{}, fmt.Errorf("sync task of order %d: %w", orderID, ErrNotFound)
	}
	if err != nil {
		return SyncTask{}, fmt.Errorf("read sync task of order %d: %w", orderID, err)
	}
	t.ID += base
	t.UpdateAt = t.DateAdd
	if upd.Valid {
		t.UpdateAt = upd.Time
	}
	t.Failed, t.ClaimedBy = failed.Valid, owner.String
	if until.Valid {
		t.ClaimUntil = until.Time
	}
	return t, nil
}

// ClaimTask claims a due, unfailed, unclaimed pending task (SYNC_STATUS,
// PARTIAL_REFUND or SFSYNC_WEBHOOK) for owner
// for ttl, so that no other sender handles it meanwhile (an owner's own
// live claim is not taken twice either). It returns the claimed task
// (with the change it holds now), or ok false when the task is claimed by
// another, no longer due, failed or gone.
func (s *Store) ClaimTask(ctx context.Context, taskID uint64, owner string, ttl time.Duration) (SyncTask, bool, error) {
	table, row := s.taskRow(taskID)
	res, err := s.db.ExecContext(ctx, `UPDATE `+table+`
	      SET sfsync_claim_owner = ?, sfsync_claim_until = NOW(3) + INTERVAL ? MICROSECOND
	      WHERE id_shoppingfeed_task_order = ? AND action IN `+sqlPendingActions+` AND sfsync_failed_at IS NULL
	        AND (update_at IS NULL OR update_at <= NOW())
	        AND (sfsync_claim_until IS NULL OR sfsync_claim_until < NOW(3))`,
		owner, ttl.Microseconds(), row)
	if err != nil {
		return SyncTask{}, false, fmt.Errorf("claim task %d: %w", taskID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return SyncTask{}, false, nil
	}
	var t SyncTask
	var upd sql.NullTime
	var postedAge int64
	err = s.db.QueryRowContext(ctx, `SELECT id_shoppingfeed_task_order, id_order, update_at, date_add,
	        COALESCE(sfsync_history_first, 0), COALESCE(sfsync_history_last, 0), sfsync_attempts, COALESCE(sfsync_posted_op, ''),
	        COALESCE(TIMESTAMPDIFF(SECOND, sfsync_posted_at, NOW()), 0), COALESCE(sfsync_posted_batch, ''),
	        COALESCE(sfsync_store_id, ''), COALESCE(sfsync_token_id, 0), NOW(3)
	      FROM `+table+` WHERE id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ?`, row, owner).
		Scan(&t.ID, &t.OrderID, &upd, &t.DateAdd, &t.First, &t.Last, &t.Attempts, &t.PostedOp,
			&postedAge, &t.PostedBatch, &t.PostedStore, &t.PostedToken, &t.Now)
	if errors.Is(err, sql.ErrNoRows) {
		return SyncTask{}, false, nil
	}
	if err != nil {
		return SyncTask{}, false, fmt.Errorf("read claimed task %d: %w", taskID, err)
	}
	t.ID = taskID
	t.UpdateAt = t.DateAdd
	if upd.Valid {
		t.UpdateAt = upd.Time
	}
	t.PostedAge = time.Duration(max(postedAge, 0)) * time.Second
	if t.PostedBatch == "" {
		t.PostedStore, t.PostedToken = "", 0
	}
	t.ClaimedBy = owner
	return t, true, nil
}

// ReleaseTask gives a claimed task back, recording progress (so the sweeper
// leaves it alone) and, when note is set, the last error.
func (s *Store) ReleaseTask(ctx context.Context, taskID uint64, owner, note string) error {
	table, row := s.taskRow(taskID)
	_, err := s.db.ExecContext(ctx, "UPDATE "+table+
		" SET sfsync_claim_owner = NULL, sfsync_claim_until = NULL, sfsync_progress_at = NOW(), sfsync_error = COALESCE(NULLIF(?, ''), sfsync_error)"+
		" WHERE id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ?", ColumnText(note, errorChars), row, owner)
	if err != nil {
		return fmt.Errorf("release task %d: %w", taskID, err)
	}
	return nil
}

// CountAttempt records a failed send attempt on a claimed task and gives
// it back; it returns the attempts made so far.
func (s *Store) CountAttempt(ctx context.Context, taskID uint64, owner, errMsg string) (int, error) {
	table, row := s.taskRow(taskID)
	if _, err := s.db.ExecContext(ctx, "UPDATE "+table+
		" SET sfsync_attempts = sfsync_attempts + 1, sfsync_error = ?, sfsync_progress_at = NOW(), sfsync_claim_owner = NULL, sfsync_claim_until = NULL"+
		" WHERE id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ?", ColumnText(errMsg, errorChars), row, owner); err != nil {
		return 0, fmt.Errorf("count attempt of task %d: %w", taskID, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT sfsync_attempts FROM "+table+" WHERE id_shoppingfeed_task_order = ?", row).Scan(&n); err != nil {
		return 0, fmt.Errorf("count attempt of task %d: %w", taskID, err)
	}
	return n, nil
}

// FailTask marks a claimed task failed with the reason, for the report.
// It stays in the table until the merchant's next change (or sfsync retry)
// re-queues it.
func (s *Store) FailTask(ctx context.Context, taskID uint64, owner, operation, reason string) error {
	table, row := s.taskRow(taskID)
	_, err := s.db.ExecContext(ctx, "UPDATE "+table+
		" SET sfsync_failed_at = NOW(), sfsync_error = ?, sfsync_reported_at = NULL, sfsync_progress_at = NOW(),"+
		" sfsync_operation = COALESCE(NULLIF(?, ''), sfsync_operation), sfsync_posted_op = NULL, sfsync_posted_at = NULL, sfsync_posted_batch = NULL,"+
		" sfsync_claim_owner = NULL, sfsync_claim_until = NULL WHERE id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ?",
		ColumnText(reason, errorChars), ColumnText(operation, 16), row, owner)
	if err != nil {
		return fmt.Errorf("fail task %d: %w", taskID, err)
	}
	return nil
}

// DropTask deletes a claimed task whose order's current state needs no
// update, unless a newer change reached it since it was claimed (t.Last).
// It reports whether the task was deleted.
func (s *Store) DropTask(ctx context.Context, t SyncTask, owner string) (bool, error) {
	taskID, last := t.ID, t.Last
	table, row := s.taskRow(taskID)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("drop task %d: %w", taskID, err)
	}
	defer tx.Rollback()
	const where = "id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ? AND COALESCE(sfsync_history_last, 0) = ?"
	if err := s.markDone(ctx, tx, table, where, row, owner, last); err != nil {
		return false, fmt.Errorf("drop task %d: %w", taskID, err)
	}
	res, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE "+where, row, owner, last)
	if err != nil {
		return false, fmt.Errorf("drop task %d: %w", taskID, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("drop task %d: commit: %w", taskID, err)
	}
	n, _ := res.RowsAffected()
	if n > 0 {
		// An older failure of the order that resolved meanwhile is
		// superseded now.
		if err := s.SupersedeFailures(ctx, []uint32{t.OrderID}); err != nil {
			return true, fmt.Errorf("drop task %d: %w", taskID, err)
		}
	}
	if n == 0 {
		return false, s.ReleaseTask(ctx, taskID, owner, "")
	}
	return true, nil
}

// ErrClaimLost is MarkPosted's answer when a task is no longer claimed by
// the caller: its claim lapsed and another sender took it. Nothing was
// recorded; the POST must not be made.
var ErrClaimLost = errors.New("claim lost to another sender")

// MarkPosted records, just before a POST leaves, that operation may reach
// Shopping Feed for the claimed tasks: until RecordSent or FailTask
// records the outcome, the next attempt must first find out whether it
// was applied. It renews the claims for ttl. All or nothing: when a task
// is no longer claimed by owner (its claim lapsed and another sender took
// it), nothing is recorded and the error is ErrClaimLost.
func (s *Store) MarkPosted(ctx context.Context, owner, operation string, ids []uint64, ttl time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	t := s.T("shoppingfeed_task_order")
	marks := sqlMarks(len(ids))
	idArgs := make([]any, 0, len(ids)+1)
	for _, id := range ids {
		idArgs = append(idArgs, id)
	}
	idArgs = append(idArgs, owner)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record the intent to send %s: %w", operation, err)
	}
	defer tx.Rollback()
	var held int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT id_shoppingfeed_task_order FROM "+t+
		" WHERE id_shoppingfeed_task_order IN ("+marks+") AND sfsync_claim_owner = ? FOR UPDATE) held", idArgs...).Scan(&held); err != nil {
		return fmt.Errorf("record the intent to send %s: %w", operation, err)
	}
	if held != len(ids) {
		return fmt.Errorf("record the intent to send %s: %d of %d tasks: %w", operation, len(ids)-held, len(ids), ErrClaimLost)
	}
	args := append([]any{ColumnText(operation, 16), ttl.Microseconds()}, idArgs...)
	if _, err := tx.ExecContext(ctx, "UPDATE "+t+" SET sfsync_posted_op = ?, sfsync_posted_at = NOW(), sfsync_posted_batch = NULL,"+
		" sfsync_claim_until = NOW(3) + INTERVAL ? MICROSECOND WHERE id_shoppingfeed_task_order IN ("+marks+") AND sfsync_claim_owner = ?", args...); err != nil {
		return fmt.Errorf("record the intent to send %s: %w", operation, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record the intent to send %s: %w", operation, err)
	}
	return nil
}

// MarkPostedBatch keeps, the moment Shopping Feed answered a POST, the
// batch it created, on the owner's tasks that MarkPosted marked: a sender
// that stops before RecordSent leaves the next attempt that batch to
// follow. One statement, so that the span in which a stop loses the
// batch id is as short as can be.
func (s *Store) MarkPostedBatch(ctx context.Context, owner, batchID, storeID string, tokenID uint32, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	var tok any
	if tokenID != 0 {
		tok = tokenID
	}
	args := []any{ColumnText(batchID, 50), ColumnText(storeID, 32), tok, owner}
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE "+s.T("shoppingfeed_task_order")+
		" SET sfsync_posted_batch = ?, sfsync_store_id = ?, sfsync_token_id = ? WHERE sfsync_claim_owner = ? AND sfsync_posted_op IS NOT NULL"+
		" AND id_shoppingfeed_task_order IN ("+sqlMarks(len(ids))+")", args...); err != nil {
		return fmt.Errorf("keep batch %s: %w", batchID, err)
	}
	return nil
}

// ClearPosted forgets the intent on the owner's tasks: Shopping Feed
// answered the POST with a refusal that applied nothing (429, 5xx), so
// the next attempt has nothing to find out.
func (s *Store) ClearPosted(ctx context.Context, owner string, ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{owner}
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE "+s.T("shoppingfeed_task_order")+
		" SET sfsync_posted_op = NULL, sfsync_posted_at = NULL, sfsync_posted_batch = NULL WHERE sfsync_claim_owner = ?"+
		" AND id_shoppingfeed_task_order IN ("+sqlMarks(len(ids))+")", args...); err != nil {
		return fmt.Errorf("forget the intent: %w", err)
	}
	return nil
}

// SentTask is a claimed task whose operation Shopping Feed accepted.
type SentTask struct {
	TaskID  uint64
	OrderID uint32
	// Action is the task's pending action: SYNC_STATUS when empty, or
	// PARTIAL_REFUND. The sent task takes CheckAction(Action).
	Action string
	// Last is the change the task held when claimed, and First the first
	// one it covered (0: Last only).
	Last, First uint64
	// Then, when set, is an operation the order's current state still
	// needs after this one (deliver after ship): a pending task is left
	// for it, due now.
	Then Operation
	// LogMsg, when set, is the process-log line (level success, process
	// ProcessOrderSync, the order as its object, the owner as id_session)
	// written in the same transaction: the module's "Ticket created" line.
	LogMsg string
}

// RecordSent moves the sent tasks to CHECK_TICKET_SYNC_STATUS (a partial
// refund's to ACTION_CHECK_TICKET_PARTIAL_REFUND) with the batch id, as
// the module does, in one transaction. A task that a newer
// change reached since it was claimed stays SYNC_STATUS (and due, so the
// newer change is sent next), its first change moved past the one sent;
// the batch is then recorded on a new CHECK_TICKET_SYNC_STATUS row of its
// own, so its ticket is followed too. A moved task whose Then is set
// leaves a new pending SYNC_STATUS task holding the same change, due now,
// so that the next operation goes in a later request than this one. It
// returns those new tasks' ids by the sent task's id.
func (s *Store) RecordSent(ctx context.Context, owner, batchID, operation, storeID string, tokenID uint32, tasks []SentTask) (map[uint64]uint64, error) {
	batchID, operation, storeID = ColumnText(batchID, 50), ColumnText(operation, 16), ColumnText(storeID, 32)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("record batch %s: %w", batchID, err)
	}
	defer tx.Rollback()
	follow := map[uint64]uint64{}
	t := s.T("shoppingfeed_task_order")
	var tok any
	if tokenID != 0 {
		tok = tokenID
	}
	var moved []SentTask
	for _, st := range tasks {
		res, err := tx.ExecContext(ctx, "UPDATE "+t+" SET action = ?, batch_id = ?, ticket_number = NULL, sfsync_operation = ?, sfsync_store_id = ?,"+
			" sfsync_token_id = ?, sfsync_attempts = 0, sfsync_error = NULL, sfsync_progress_at = NOW(), date_upd = NOW(),"+
			" sfsync_claim_owner = NULL, sfsync_claim_until = NULL, sfsync_posted_op = NULL, sfsync_posted_at = NULL, sfsync_posted_batch = NULL"+
			" WHERE id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ? AND COALESCE(sfsync_history_last, 0) = ?",
			CheckAction(st.Action), batchID, operation, storeID, tok, st.TaskID, owner, st.Last)
		if err != nil {
			return nil, fmt.Errorf("record batch %s: %w", batchID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			moved = append(moved, st)
			continue
		}
		if st.Then == "" {
			continue
		}
		res, err = tx.ExecContext(ctx, "INSERT INTO "+t+" (action, id_order, update_at, date_add, date_upd, sfsync_history_first, sfsync_history_last,"+
			" sfsync_operation, sfsync_progress_at) VALUES (?, ?, NOW(), NOW(), NOW(), ?, ?, ?, NOW())",
			ActionSyncStatus, st.OrderID, st.Last, st.Last, string(st.Then))
		if err != nil {
			return nil, fmt.Errorf("record batch %s: leave the %s of order %d pending: %w", batchID, st.Then, st.OrderID, err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("record batch %s: leave the %s of order %d pending: %w", batchID, st.Then, st.OrderID, err)
		}
		follow[st.TaskID] = uint64(id)
	}
	if len(moved) > 0 {
		vals := make([]string, len(moved))
		args := make([]any, 0, 8*len(moved))
		for i, st := range moved {
			vals[i] = "(?, ?, NULL, ?, NULL, NOW(), NOW(), ?, ?, ?, ?, ?, NOW())"
			args = append(args, CheckAction(st.Action), st.OrderID, batchID, st.FirstSent(), st.Last, operation, storeID, tok)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+t+" (action, id_order, ticket_number, batch_id, update_at, date_add, date_upd,"+
			" sfsync_history_first, sfsync_history_last, sfsync_operation, sfsync_store_id, sfsync_token_id, sfsync_progress_at) VALUES "+strings.Join(vals, ","), args...); err != nil {
			return nil, fmt.Errorf("record batch %s: %w", batchID, err)
		}
		for _, st := range moved {
			// The change sent is behind the task now: a rule that looks at
			// the task's changes (a shipped state reached since its first)
			// must not see it again.
			if _, err := tx.ExecContext(ctx, "UPDATE "+t+" SET sfsync_claim_owner = NULL, sfsync_claim_until = NULL,"+
				" sfsync_posted_op = NULL, sfsync_posted_at = NULL, sfsync_posted_batch = NULL,"+
				" sfsync_history_first = GREATEST(COALESCE(sfsync_history_first, 0), ? + 1)"+
				" WHERE id_shoppingfeed_task_order = ? AND sfsync_claim_owner = ?", st.Last, st.TaskID, owner); err != nil {
				return nil, fmt.Errorf("record batch %s: %w", batchID, err)
			}
		}
	}
	var logs []SentTask
	for _, st := range tasks {
		if st.LogMsg != "" {
			logs = append(logs, st)
		}
	}
	if len(logs) > 0 {
		vals := make([]string, len(logs))
		args := make([]any, 0, 5*len(logs))
		for i, st := range logs {
			vals[i] = "(?, ?, ?, 'Order', ?, ?, NOW())"
			args = append(args, ProcessOrderSync, ColumnText(st.LogMsg, MediumTextChars), LevelSuccess, st.OrderID, ColumnText(owner, 255))
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+s.T("shoppingfeed_processlogger")+
			" (name, msg, level, object_name, object_id, id_session, date_add) VALUES "+strings.Join(vals, ","), args...); err != nil {
			return nil, fmt.Errorf("record batch %s: process log: %w", batchID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("record batch %s: %w", batchID, err)
	}
	return follow, nil
}

// ProcessOrderSync is the process name of the official module's order
// sync (its cron task shoppingfeed:syncOrder): the back office's process
// log lists and filters lines by it, so sfsync writes its order lines
// under it too (id_session tells sfsync's lines apart).
const ProcessOrderSync = "shoppingfeed:syncOrder"

// ReachedSince reports whether the order entered one of states in a change
// at or after history id from.
func (s *Store) ReachedSince(ctx context.Context, orderID uint32, from uint64, states []uint32) (bool, error) {
	if len(states) == 0 {
		return false, nil
	}
	args := []any{orderID, from}
	for _, st := range states {
		args = append(args, st)
	}
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+s.T("order_history")+
		" WHERE id_order = ? AND id_order_history >= ? AND id_order_state IN (?"+strings.Repeat(",?", len(states)-1)+")", args...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read history of order %d: %w", orderID, err)
	}
	return n > 0, nil
}

// RenewClaims extends owner's claims on tasks still in its hands.
func (s *Store) RenewClaims(ctx context.Context, ids []uint64, owner string, ttl time.Duration) error {
	for t, rows := range s.byTable(ids) {
		for start := 0; start < len(rows); start += inChunk {
			chunk := rows[start:min(start+inChunk, len(rows))]
			args := []any{ttl.Microseconds()}
			args = append(args, chunk...)
			args = append(args, owner)
			if _, err := s.db.ExecContext(ctx, "UPDATE "+t+" SET sfsync_claim_until = NOW(3) + INTERVAL ? MICROSECOND"+
				" WHERE id_shoppingfeed_task_order IN ("+sqlMarks(len(chunk))+") AND sfsync_claim_owner = ?", args...); err != nil {
				return fmt.Errorf("renew claims: %w", err)
			}
		}
	}
	return nil
}

// TransactionID returns the first order_payment.transaction_id of an order
// ("" when it has none).
func (s *Store) TransactionID(ctx context.Context, orderID uint32) (string, error) {
	var id sql.NullString
	err := s.db.QueryRowContext(ctx, "SELECT p.transaction_id FROM "+s.T("order_payment")+" p JOIN "+s.T("orders")+
		" o ON o.reference = p.order_reference WHERE o.id_order = ? AND COALESCE(p.transaction_id, '') <> '' ORDER BY p.id_order_payment LIMIT 1", orderID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read payment of order %d: %w", orderID, err)
	}
	return id.String, nil
}

// Changes is an order's latest state change and the one before it.
type Changes struct {
	// HistoryID, State and At are the latest change's (At in the shop's clock).
	HistoryID uint64
	State     uint32
	At        time.Time
	// Previous is the state before it (0 when there is none).
	Previous uint32
}

// LastChanges reads the order's latest state change and the one before.
func (s *Store) LastChanges(ctx context.Context, orderID uint32) (Changes, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id_order_history, id_order_state, date_add FROM "+s.T("order_history")+
		" WHERE id_order = ? ORDER BY id_order_history DESC LIMIT 2", orderID)
	if err != nil {
		return Changes{}, fmt.Errorf("read history of order %d: %w", orderID, err)
	}
	defer rows.Close()
	var c Changes
	for i := 0; rows.Next(); i++ {
		var id uint64
		var st uint32
		var t time.Time
		if err := rows.Scan(&id, &st, &t); err != nil {
			return Changes{}, err
		}
		if i == 0 {
			c.HistoryID, c.State, c.At = id, st, t
		} else {
			c.Previous = st
		}
	}
	return c, rows.Err()
}

// WebhookDelivered returns the history id of the last change delivered to
// the webhook for an order (0 when none).
func (s *Store) WebhookDelivered(ctx context.Context, orderID uint32) (uint64, error) {
	var id uint64
	err := s.db.QueryRowContext(ctx, "SELECT id_order_history FROM "+s.T("sfsync_webhook_delivered")+" WHERE id_order = ?", orderID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read webhook delivery of order %d: %w", orderID, err)
	}
	return id, nil
}

// MarkWebhookDelivered records that the change historyID (status) of an
// order reached the webhook; it never moves backwards.
func (s *Store) MarkWebhookDelivered(ctx context.Context, orderID uint32, historyID uint64, status string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+s.T("sfsync_webhook_delivered")+" (id_order, id_order_history, status, date_upd) VALUES (?, ?, ?, NOW())"+
		" ON DUPLICATE KEY UPDATE status = IF(VALUES(id_order_history) > id_order_history, VALUES(status), status),"+
		" id_order_history = GREATEST(id_order_history, VALUES(id_order_history)), date_upd = NOW()", orderID, historyID, ColumnText(status, 64))
	if err != nil {
		return fmt.Errorf("record webhook delivery of order %d: %w", orderID, err)
	}
	return nil
}

// ClockOffset is the database clock's offset from UTC, to turn the shop's
// wall times into instants.
func (s *Store) ClockOffset(ctx context.Context) (time.Duration, error) {
	var secs int64
	if err := s.db.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())").Scan(&secs); err != nil {
		return 0, fmt.Errorf("read database clock offset: %w", err)
	}
	return time.Duration(secs) * time.Second, nil
}

// FirstSent is the first change (for a partial refund, the first order
// slip) the sent request covered.
func (st SentTask) FirstSent() uint64 {
	if st.First != 0 && st.First <= st.Last {
		return st.First
	}
	return st.Last
}
