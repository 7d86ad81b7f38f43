package prestashop

import (
	"context"
	"database/sql"
	"fmt"
)

// UpdateCounts describes the updates (SYNC_STATUS and SFSYNC_WEBHOOK tasks)
// the module's task table holds, for gauges.
type UpdateCounts struct {
	// Due have reached their update_at and wait for a sender.
	Due int
	// Waiting wait for their update_at (a shipment's delay).
	Waiting int
	// Failed are tasks of any action marked failed (they stay until retried
	// or superseded).
	Failed int
	// OldestDueSeconds is how long the oldest due update has been due (0
	// when none is).
	OldestDueSeconds float64
}

// CountUpdates reads UpdateCounts in one statement.
func (s *Store) CountUpdates(ctx context.Context) (UpdateCounts, error) {
	var c UpdateCounts
	var due, waiting, failed sql.NullInt64
	var oldest sql.NullFloat64
	err := s.db.QueryRowContext(ctx, `SELECT
	        SUM(action IN `+sqlPendingActions+` AND sfsync_failed_at IS NULL AND (update_at IS NULL OR update_at <= NOW())),
	        SUM(action IN `+sqlPendingActions+` AND sfsync_failed_at IS NULL AND update_at > NOW()),
	        SUM(sfsync_failed_at IS NOT NULL),
	        TIMESTAMPDIFF(MICROSECOND, MIN(CASE WHEN action IN `+sqlPendingActions+` AND sfsync_failed_at IS NULL AND update_at <= NOW() THEN update_at END), NOW()) / 1e6
	      FROM `+s.T("shoppingfeed_task_order")).Scan(&due, &waiting, &failed, &oldest)
	if err != nil {
		return c, fmt.Errorf("count updates: %w", err)
	}
	c.Due, c.Waiting, c.Failed = int(due.Int64), int(waiting.Int64), int(failed.Int64)
	c.OldestDueSeconds = max(oldest.Float64, 0)
	return c, nil
}
