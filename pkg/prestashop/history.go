package prestashop

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// HistoryRow is an order_history row with what the detector decides on.
type HistoryRow struct {
	ID      uint64
	OrderID uint32
	StateID uint32
	At      time.Time
	// ShopID is the order's shop; 0 when the order row is missing.
	ShopID uint32
	// SF is true for a Shopping Feed order (it has a shoppingfeed_order row).
	SF bool
}

// IDRange is an inclusive range of ids.
type IDRange struct{ Lo, Hi uint64 }

const historyCols = `SELECT h.id_order_history, h.id_order, h.id_order_state, h.date_add, COALESCE(o.id_shop, 0), sf.id_order IS NOT NULL`

func (s *Store) historyFrom() string {
	return ` FROM ` + s.T("order_history") + ` h
	  LEFT JOIN ` + s.T("orders") + ` o ON o.id_order = h.id_order
	  LEFT JOIN ` + s.T("shoppingfeed_order") + ` sf ON sf.id_order = h.id_order`
}

// HistoryAfter reads up to limit order_history rows with ids above after,
// in id order.
func (s *Store) HistoryAfter(ctx context.Context, after uint64, limit int) ([]HistoryRow, error) {
	q := historyCols + s.historyFrom() + ` WHERE h.id_order_history > ? ORDER BY h.id_order_history LIMIT ?`
	return s.history(ctx, q, after, limit)
}

// HistoryIn reads the order_history rows whose ids fall in the ranges, in
// id order within each group of 200 ranges.
func (s *Store) HistoryIn(ctx context.Context, ranges []IDRange) ([]HistoryRow, error) {
	var out []HistoryRow
	for start := 0; start < len(ranges); start += 200 {
		chunk := ranges[start:min(start+200, len(ranges))]
		conds := make([]string, len(chunk))
		args := make([]any, 0, 2*len(chunk))
		for i, r := range chunk {
			conds[i] = "h.id_order_history BETWEEN ? AND ?"
			args = append(args, r.Lo, r.Hi)
		}
		rows, err := s.history(ctx, historyCols+s.historyFrom()+" WHERE "+strings.Join(conds, " OR ")+" ORDER BY h.id_order_history", args...)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (s *Store) history(ctx context.Context, q string, args ...any) ([]HistoryRow, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read order history: %w", err)
	}
	defer rows.Close()
	var out []HistoryRow
	for rows.Next() {
		var r HistoryRow
		if err := rows.Scan(&r.ID, &r.OrderID, &r.StateID, &r.At, &r.ShopID, &r.SF); err != nil {
			return nil, fmt.Errorf("read order history: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read order history: %w", err)
	}
	return out, nil
}

// MaxHistoryID is the highest order_history id, 0 for an empty log.
func (s *Store) MaxHistoryID(ctx context.Context) (uint64, error) {
	var id uint64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id_order_history), 0) FROM "+s.T("order_history")).Scan(&id); err != nil {
		return 0, fmt.Errorf("read the last order_history id: %w", err)
	}
	return id, nil
}

// MaxHistoryIDBefore is the highest id of a change made before t, an
// instant: order_history.date_add is the shop's wall clock, so t is
// converted with the database's own offset from UTC.
func (s *Store) MaxHistoryIDBefore(ctx context.Context, t time.Time) (uint64, error) {
	offset, err := s.ClockOffset(ctx)
	if err != nil {
		return 0, err
	}
	var id uint64
	wall := t.UTC().Add(offset)
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id_order_history), 0) FROM "+s.T("order_history")+" WHERE date_add < ?", wall).Scan(&id); err != nil {
		return 0, fmt.Errorf("read the last order_history id before %s: %w", t.Format(time.RFC3339), err)
	}
	return id, nil
}

// LockHistoryRange takes, at READ COMMITTED, a locking read of the
// order_history ids lo to hi and returns how many rows it found. With
// nowait (MariaDB 10.3+, MySQL 8.0+) a row still held by an open
// transaction fails it at once; without, it waits at most 1 s
// (innodb_lock_wait_timeout). The error is the server's, for the caller to
// tell a lock conflict (1205, 3572) from a missing grant or syntax.
func (s *Store) LockHistoryRange(ctx context.Context, lo, hi uint64, nowait bool) (int, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if !nowait {
		if _, err := conn.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
			return 0, err
		}
		// The connection goes back to the pool: give it its default again.
		defer conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION innodb_lock_wait_timeout = DEFAULT")
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	// A plain locking read, rows counted here: a locking read inside a
	// derived table (SELECT COUNT(*) FROM (… FOR UPDATE NOWAIT)) is the
	// kind of statement a server is least tested on.
	q := "SELECT id_order_history FROM " + s.T("order_history") + " WHERE id_order_history BETWEEN ? AND ? FOR UPDATE"
	if nowait {
		q += " NOWAIT"
	}
	rows, err := tx.QueryContext(ctx, q, lo, hi)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	err = rows.Err()
	rows.Close()
	return n, err
}
