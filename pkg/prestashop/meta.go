package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MetaValueMax is the longest value sfsync_meta holds (a TEXT column).
const MetaValueMax = 65535

// Meta reads a value sfsync keeps about itself in sfsync_meta; ok is false
// when there is none.
func (s *Store) Meta(ctx context.Context, name string) (value string, ok bool, err error) {
	var v sql.NullString
	err = s.db.QueryRowContext(ctx, "SELECT value FROM "+s.T("sfsync_meta")+" WHERE name = ?", name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read sfsync_meta %s: %w", name, err)
	}
	return v.String, v.Valid, nil
}

// SetMeta writes a value to sfsync_meta, replacing the one there. A value
// longer than MetaValueMax is refused rather than truncated.
func (s *Store) SetMeta(ctx context.Context, name, value string) error {
	if len(value) > MetaValueMax {
		return fmt.Errorf("write sfsync_meta %s: %d bytes is more than the column holds (%d)", name, len(value), MetaValueMax)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO "+s.T("sfsync_meta")+" (name, value, date_upd) VALUES (?, ?, NOW())"+
		" ON DUPLICATE KEY UPDATE value = VALUES(value), date_upd = VALUES(date_upd)", name, value); err != nil {
		return fmt.Errorf("write sfsync_meta %s: %w", name, err)
	}
	return nil
}

// TakeTurn reports whether this process takes the turn named name: at
// most one caller in every period, across every process on the database
// (a compare-and-set of the turn's time in sfsync_meta, by the database's
// clock, whole seconds).
func (s *Store) TakeTurn(ctx context.Context, name string, every time.Duration) (bool, error) {
	t := s.T("sfsync_meta")
	if _, err := s.db.ExecContext(ctx, "INSERT IGNORE INTO "+t+" (name, value, date_upd) VALUES (?, NULL, '2000-01-01 00:00:00')", name); err != nil {
		return false, fmt.Errorf("take turn %s: %w", name, err)
	}
	res, err := s.db.ExecContext(ctx, "UPDATE "+t+" SET date_upd = NOW() WHERE name = ? AND date_upd <= NOW() - INTERVAL ? SECOND",
		name, max(int64(every/time.Second)-1, 0))
	if err != nil {
		return false, fmt.Errorf("take turn %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
