package prestashop

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
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
	// Bad says why the row cannot be used (an order id, state or date that
	// is missing or out of range); "" for a good row. A bad row still
	// counts as read, so that the rows after it flow, and carries nothing
	// else but its ID.
	Bad string
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
		// Everything but the primary key is scanned loose and checked
		// here: one row that does not fit must not fail the read of those
		// after it.
		var id uint64
		var order, state, at, shop, sf any
		if err := rows.Scan(&id, &order, &state, &at, &shop, &sf); err != nil {
			return nil, fmt.Errorf("read order history: %w", err)
		}
		out = append(out, historyRow(id, order, state, at, shop, sf))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read order history: %w", err)
	}
	return out, nil
}

// historyRow checks the loose values of one order_history row.
func historyRow(id uint64, order, state, at, shop, sf any) HistoryRow {
	r := HistoryRow{ID: id}
	orderID, bad := orderValue(order)
	stateID, err := uintValue(state, math.MaxUint32)
	if err != nil {
		bad = append(bad, "id_order_state "+err.Error())
	}
	t, err := timeValue(at)
	if err != nil {
		bad = append(bad, "date_add "+err.Error())
	}
	if len(bad) > 0 {
		r.Bad = strings.Join(bad, "; ")
		return r
	}
	r.OrderID, r.StateID, r.At = orderID, uint32(stateID), t
	r.ShopID, r.SF = joinedValues(shop, sf)
	return r
}

// orderValue checks a tailed row's loose id_order: a whole number from 1;
// bad holds what is wrong with it.
func orderValue(v any) (id uint32, bad []string) {
	n, err := uintValue(v, math.MaxUint32)
	switch {
	case err != nil:
		return 0, []string{"id_order " + err.Error()}
	case n == 0:
		return 0, []string{"id_order is 0"}
	}
	return uint32(n), nil
}

// joinedValues reads a tailed row's joined columns: the order's shop
// (COALESCE gives 0 for a missing order, and an id out of range is a shop
// sfsync cannot know) and whether it is a Shopping Feed order.
func joinedValues(shop, sf any) (shopID uint32, isSF bool) {
	if v, err := uintValue(shop, math.MaxUint32); err == nil {
		shopID = uint32(v)
	}
	if v, err := uintValue(sf, 1); err == nil {
		isSF = v == 1
	}
	return shopID, isSF
}

// uintValue reads a column value scanned into any as an integer from 0 to
// max.
func uintValue(v any, max uint64) (uint64, error) {
	var n uint64
	switch x := v.(type) {
	case nil:
		return 0, errors.New("is NULL")
	case int64:
		if x < 0 {
			return 0, fmt.Errorf("is negative (%d)", x)
		}
		n = uint64(x)
	case uint64:
		n = x
	case []byte:
		u, err := strconv.ParseUint(strings.TrimSpace(string(x)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("is not a whole number (%q)", ColumnText(string(x), 40))
		}
		n = u
	default:
		return 0, fmt.Errorf("is not a whole number (%T)", v)
	}
	if n > max {
		return 0, fmt.Errorf("is out of range (%d)", n)
	}
	return n, nil
}

// timeValue reads a DATETIME scanned into any (the connection parses
// times); the zero date of a non-strict server is refused.
func timeValue(v any) (time.Time, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, errors.New("is NULL")
	case time.Time:
		if x.IsZero() {
			return time.Time{}, errors.New("is the zero date")
		}
		return x, nil
	case []byte:
		return time.Time{}, fmt.Errorf("is not a date (%q)", ColumnText(string(x), 40))
	}
	return time.Time{}, fmt.Errorf("is not a date (%T)", v)
}

// MaxHistoryID is the highest order_history id, 0 for an empty log.
func (s *Store) MaxHistoryID(ctx context.Context) (uint64, error) {
	return s.maxID(ctx, "order_history", "id_order_history", time.Time{})
}

// MaxHistoryIDBefore is the highest id of a change made before t, an
// instant: order_history.date_add is the shop's wall clock, so t is
// converted with the database's own offset from UTC.
func (s *Store) MaxHistoryIDBefore(ctx context.Context, t time.Time) (uint64, error) {
	return s.maxID(ctx, "order_history", "id_order_history", t)
}

// maxID is the highest id (column col) of table, of a row whose date_add
// (the shop's wall clock) is before the instant before when it is set; 0
// when there is none.
func (s *Store) maxID(ctx context.Context, table, col string, before time.Time) (uint64, error) {
	q := "SELECT COALESCE(MAX(" + col + "), 0) FROM " + s.T(table)
	var args []any
	what := "read the last " + table + " id"
	if !before.IsZero() {
		offset, err := s.ClockOffset(ctx)
		if err != nil {
			return 0, err
		}
		q += " WHERE date_add < ?"
		args = append(args, before.UTC().Add(offset))
		what += " before " + before.Format(time.RFC3339)
	}
	var id uint64
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
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

// BadHistoryRow is an order_history row the detector skipped because it
// could not be used (HistoryRow.Bad).
type BadHistoryRow struct {
	ID     uint64    `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"seen_at"`
}

// BadHistory is what sfsync_meta keeps of the skipped rows: how many there
// were, and the last BadHistoryKept of them.
type BadHistory struct {
	Total int             `json:"total"`
	Rows  []BadHistoryRow `json:"rows"`
}

// BadHistoryKept is how many skipped rows sfsync_meta lists.
const BadHistoryKept = 50

const badHistoryMeta = "detector.bad_history_rows"

// RecordBadHistory adds skipped rows to the list `sfsync status` shows. A
// row already listed (read again after a replay or a retried batch) is not
// counted twice.
func (s *Store) RecordBadHistory(ctx context.Context, rows []BadHistoryRow) error {
	if len(rows) == 0 {
		return nil
	}
	bh, err := s.BadHistory(ctx)
	if err != nil {
		return err
	}
	listed := map[uint64]bool{}
	for _, r := range bh.Rows {
		listed[r.ID] = true
	}
	for _, r := range rows {
		if listed[r.ID] {
			continue
		}
		listed[r.ID] = true
		r.Reason = ColumnText(r.Reason, 300)
		bh.Rows = append(bh.Rows, r)
		bh.Total++
	}
	sort.Slice(bh.Rows, func(i, j int) bool { return bh.Rows[i].ID < bh.Rows[j].ID })
	if n := len(bh.Rows); n > BadHistoryKept {
		bh.Rows = bh.Rows[n-BadHistoryKept:]
	}
	b, err := json.Marshal(bh)
	if err != nil {
		return fmt.Errorf("record skipped order_history rows: %w", err)
	}
	return s.SetMeta(ctx, badHistoryMeta, string(b))
}

// BadHistory reads the skipped rows' record; empty when there is none.
func (s *Store) BadHistory(ctx context.Context) (BadHistory, error) {
	var bh BadHistory
	v, ok, err := s.Meta(ctx, badHistoryMeta)
	if err != nil || !ok || v == "" {
		return bh, err
	}
	if err := json.Unmarshal([]byte(v), &bh); err != nil {
		// A record nobody can read is started again rather than blocking
		// the detector.
		return BadHistory{}, nil
	}
	return bh, nil
}
