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

// Sizes of shoppingfeed_processlogger's columns in module 2.3.0, in
// characters.
const (
	logNameChars    = 100
	logLevelChars   = 10
	logObjectChars  = 100
	logSessionChars = 255
)

// LogEntry is one line of shoppingfeed_processlogger.
type LogEntry struct {
	// Name is the process, e.g. "sfsync:syncOrder".
	Name  string
	Msg   string
	Level string
	// ObjectName is "Order" for lines about an order; ObjectID its id.
	// Lines about something else name it ("Shop", "Configuration"); a
	// line about nothing in particular leaves both empty.
	ObjectName string
	ObjectID   uint32
	// Session groups the lines of one run; sfsync uses the process id.
	Session string
}

// ProcessLog appends a line the back office shows. The module's table has
// object_name NOT NULL: a line without an object writes an empty name, and
// an object id without a name is written without its id (an id alone says
// nothing). Every text is made safe for its column (ColumnText).
func (s *Store) ProcessLog(ctx context.Context, e LogEntry) error {
	if e.ObjectName == "" {
		e.ObjectID = 0
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO "+s.T("shoppingfeed_processlogger")+
		" (name, msg, level, object_name, object_id, id_session, date_add) VALUES (?, ?, ?, ?, NULLIF(?, 0), ?, NOW())",
		ColumnText(e.Name, logNameChars), ColumnText(e.Msg, MediumTextChars), ColumnText(e.Level, logLevelChars),
		ColumnText(e.ObjectName, logObjectChars), e.ObjectID, ColumnText(e.Session, logSessionChars))
	if err != nil {
		return fmt.Errorf("write process log: %w", err)
	}
	return nil
}
