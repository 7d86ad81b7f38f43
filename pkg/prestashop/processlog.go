package prestashop

import (
	"context"
	"fmt"
)

// Log levels of shoppingfeed_processlogger, as the back office shows them.
const (
	LevelSuccess = "success"
	LevelError   = "error"
	LevelInfo    = "info"
)

// LogEntry is one line of shoppingfeed_processlogger.
type LogEntry struct {
	// Name is the process, e.g. "sfsync:syncOrder".
	Name  string
	Msg   string
	Level string
	// ObjectName is "Order" for lines about an order; ObjectID its id.
	ObjectName string
	ObjectID   uint32
	// Session groups the lines of one run; sfsync uses the process id.
	Session string
}

// ProcessLog appends a line the back office shows.
func (s *Store) ProcessLog(ctx context.Context, e LogEntry) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+s.T("shoppingfeed_processlogger")+
		" (name, msg, level, object_name, object_id, id_session, date_add) VALUES (?, ?, ?, NULLIF(?, ''), NULLIF(?, 0), ?, NOW())",
		truncate(e.Name, 100), e.Msg, truncate(e.Level, 10), truncate(e.ObjectName, 100), e.ObjectID, truncate(e.Session, 100))
	if err != nil {
		return fmt.Errorf("write process log: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
