package prestashop

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Failure is a failed task as the merchant's error report shows it.
type Failure struct {
	TaskID  uint64
	OrderID uint32
	// Action is the task's action: SYNC_STATUS when sending failed,
	// CHECK_TICKET_SYNC_STATUS when Shopping Feed's ticket did.
	Action    string
	Operation string
	BatchID   string
	// TicketNumber is the ticket's id, when one was read.
	TicketNumber string
	Error        string
	// FailedAt is sfsync_failed_at, in the shop's wall clock.
	FailedAt time.Time
	// Reference is the PrestaShop order reference.
	Reference string
	// Channel and MarketplaceRef are the marketplace and its reference.
	Channel        string
	MarketplaceRef string
	// StateName is the order's current state, in the order's language.
	StateName string
}

// FailedShops lists the shops that have failures not yet reported. A
// failure whose order is gone belongs to no shop and is not listed.
func (s *Store) FailedShops(ctx context.Context) ([]uint32, error) {
	part, _ := s.eachTaskTable("SELECT DISTINCT o.id_shop AS id_shop FROM {tasks} t JOIN " + s.T("orders") +
		" o ON o.id_order = t.id_order WHERE t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL")
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT id_shop FROM ("+part+") u ORDER BY id_shop")
	if err != nil {
		return nil, fmt.Errorf("list shops with failures: %w", err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list shops with failures: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list shops with failures: %w", err)
	}
	return out, nil
}

// Failures lists a shop's failures not yet reported, oldest first, at most
// limit of them, and how many there are in all.
func (s *Store) Failures(ctx context.Context, shopID uint32, limit int) ([]Failure, int, error) {
	var total int
	count, args := s.eachTaskTable("SELECT COUNT(*) AS n FROM {tasks} t JOIN "+s.T("orders")+
		" o ON o.id_order = t.id_order WHERE o.id_shop = ? AND t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL", shopID)
	if err := s.db.QueryRowContext(ctx, "SELECT SUM(n) FROM ("+count+") u", args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count failures of shop %d: %w", shopID, err)
	}
	if total == 0 {
		return nil, 0, nil
	}
	part, args := s.eachTaskTable(`SELECT {task_id} AS id, t.id_order AS id_order, t.action AS action, COALESCE(t.sfsync_operation, '') AS operation,
	        COALESCE(t.batch_id, '') AS batch_id, COALESCE(t.ticket_number, '') AS ticket_number, COALESCE(t.sfsync_error, '') AS error_msg,
	        t.sfsync_failed_at AS failed_at, o.reference AS reference, COALESCE(sf.name_marketplace, '') AS channel,
	        COALESCE(sf.id_order_marketplace, '') AS marketplace_ref,
	        COALESCE((SELECT l.name FROM `+s.T("order_state_lang")+` l WHERE l.id_order_state = o.current_state
	                  ORDER BY l.id_lang = o.id_lang DESC, l.id_lang LIMIT 1), '') AS state_name
	      FROM {tasks} t
	      JOIN `+s.T("orders")+` o ON o.id_order = t.id_order
	      LEFT JOIN `+s.T("shoppingfeed_order")+` sf ON sf.id_order = t.id_order
	      WHERE o.id_shop = ? AND t.sfsync_failed_at IS NOT NULL AND t.sfsync_reported_at IS NULL`, shopID)
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM ("+part+") u ORDER BY failed_at, id LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("read failures of shop %d: %w", shopID, err)
	}
	defer rows.Close()
	var out []Failure
	for rows.Next() {
		var f Failure
		if err := rows.Scan(&f.TaskID, &f.OrderID, &f.Action, &f.Operation, &f.BatchID, &f.TicketNumber, &f.Error, &f.FailedAt,
			&f.Reference, &f.Channel, &f.MarketplaceRef, &f.StateName); err != nil {
			return nil, 0, fmt.Errorf("read failures of shop %d: %w", shopID, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read failures of shop %d: %w", shopID, err)
	}
	return out, total, nil
}

// MarkReported records that the failures went into a report. A failure
// that changed since it was read (re-queued, and perhaps failed again) is
// left as it is, for the next report. When the report was mailed, the
// orders of the failures it marks get the module's
// shoppingfeed_order.failed_ticket = 1 (where the column exists), in the
// same transaction: the module, if switched back on, does not mail them a
// second time. It returns how many were marked.
func (s *Store) MarkReported(ctx context.Context, fs []Failure, mailed bool) (int, error) {
	flag := false
	if mailed {
		var err error
		if flag, err = s.hasFailedTicket(ctx); err != nil {
			return 0, fmt.Errorf("mark failures reported: %w", err)
		}
	}
	marked := 0
	var denied error
	byTable := map[string][]Failure{}
	var tables []string
	for _, f := range fs {
		t, _ := s.taskRow(f.TaskID)
		if byTable[t] == nil {
			tables = append(tables, t)
		}
		byTable[t] = append(byTable[t], f)
	}
	for _, t := range tables {
		fs := byTable[t]
		// The module's flag is about its own tickets: Shopping Feed's
		// failures only, not the webhook's.
		sf := t == s.T("shoppingfeed_task_order")
		for start := 0; start < len(fs); start += inChunk {
			chunk := fs[start:min(start+inChunk, len(fs))]
			n, err := s.markReported(ctx, t, chunk, flag && sf)
			if flag && sf && accessDenied(err) {
				// No UPDATE grant on the column: mark the failures reported
				// all the same, and stop trying the flag.
				denied = fmt.Errorf("%w: %v", ErrFailedTicketDenied, err)
				flag = false
				s.failedTicketMu.Lock()
				s.failedTicket = false
				s.failedTicketMu.Unlock()
				n, err = s.markReported(ctx, t, chunk, false)
			}
			if err != nil {
				return marked, fmt.Errorf("mark failures reported: %w", err)
			}
			marked += n
		}
	}
	return marked, denied
}

// ErrFailedTicketDenied is returned (with the count of failures marked,
// all of them) by MarkReported when the database user may not update
// shoppingfeed_order.failed_ticket: the module, if switched back on, may
// mail those failures again. See the README's grants.
var ErrFailedTicketDenied = errors.New("no UPDATE grant on shoppingfeed_order.failed_ticket; the module may mail these failures again if switched back on")

// accessDenied reports a table or column access denied error (1142, 1143).
func accessDenied(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1142 || me.Number == 1143)
}

func (s *Store) markReported(ctx context.Context, table string, chunk []Failure, flag bool) (int, error) {
	pairs := make([]string, len(chunk))
	args := make([]any, 0, 2*len(chunk))
	for i, f := range chunk {
		_, row := s.taskRow(f.TaskID)
		pairs[i] = "(?, ?)"
		args = append(args, row, f.FailedAt)
	}
	in := "(id_shoppingfeed_task_order, sfsync_failed_at) IN (" + strings.Join(pairs, ",") + ")"
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// The orders first, by the rows this chunk is about to mark (the
	// update below makes sfsync_reported_at non-NULL).
	if flag {
		if _, err := tx.ExecContext(ctx, "UPDATE "+s.T("shoppingfeed_order")+" sf JOIN "+s.T("shoppingfeed_task_order")+
			" t ON t.id_order = sf.id_order SET sf.failed_ticket = 1 WHERE t.sfsync_reported_at IS NULL AND "+
			strings.ReplaceAll(in, "(id_shoppingfeed_task_order, sfsync_failed_at)", "(t.id_shoppingfeed_task_order, t.sfsync_failed_at)"), args...); err != nil {
			return 0, fmt.Errorf("set shoppingfeed_order.failed_ticket: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+table+" SET sfsync_reported_at = NOW()"+
		" WHERE sfsync_reported_at IS NULL AND "+in, args...)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// hasFailedTicket reports whether shoppingfeed_order has the module's
// failed_ticket column (module versions before it lack it). It asks the
// database once per Store; an error is not remembered.
func (s *Store) hasFailedTicket(ctx context.Context) (bool, error) {
	s.failedTicketMu.Lock()
	defer s.failedTicketMu.Unlock()
	if s.failedTicketKnown {
		return s.failedTicket, nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'failed_ticket'",
		s.prefix+"shoppingfeed_order").Scan(&n); err != nil {
		return false, fmt.Errorf("look for shoppingfeed_order.failed_ticket: %w", err)
	}
	s.failedTicket, s.failedTicketKnown = n > 0, true
	return s.failedTicket, nil
}

// TryLock takes the named lock of this shop database and table prefix
// without waiting (MySQL GET_LOCK on a connection of its own). ok is false
// when another session holds it. release gives it back; the lock also goes
// when the connection dies, so a crashed process never keeps it.
func (s *Store) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	// Lock names are at most 64 characters: hash the database, prefix and name.
	const lockName = "CONCAT('sfsync.', SHA1(CONCAT(DATABASE(), '.', ?, '.', ?)))"
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", 0)", s.prefix, name).Scan(&got); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	if got.Int64 != 1 {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "SELECT RELEASE_LOCK("+lockName+")", s.prefix, name); err != nil {
			// Never hand a connection that may still hold the lock back
			// to the pool: discard it, and the server drops the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, true, nil
}
