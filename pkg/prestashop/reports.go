package prestashop

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"time"
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
// left as it is, for the next report. It returns how many were marked.
func (s *Store) MarkReported(ctx context.Context, fs []Failure) (int, error) {
	marked := 0
	byTable := map[string][]Failure{}
	for _, f := range fs {
		t, _ := s.taskRow(f.TaskID)
		byTable[t] = append(byTable[t], f)
	}
	for t, fs := range byTable {
		for start := 0; start < len(fs); start += inChunk {
			chunk := fs[start:min(start+inChunk, len(fs))]
			pairs := make([]string, len(chunk))
			args := make([]any, 0, 2*len(chunk))
			for i, f := range chunk {
				_, row := s.taskRow(f.TaskID)
				pairs[i] = "(?, ?)"
				args = append(args, row, f.FailedAt)
			}
			res, err := s.db.ExecContext(ctx, "UPDATE "+t+" SET sfsync_reported_at = NOW()"+
				" WHERE sfsync_reported_at IS NULL AND (id_shoppingfeed_task_order, sfsync_failed_at) IN ("+strings.Join(pairs, ",")+")", args...)
			if err != nil {
				return marked, fmt.Errorf("mark failures reported: %w", err)
			}
			n, _ := res.RowsAffected()
			marked += int(n)
		}
	}
	return marked, nil
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
