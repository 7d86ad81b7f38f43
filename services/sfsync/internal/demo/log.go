package demo

import (
	"io"
	"log/slog"

	"github.com/sfsync/sfsync/pkg/logging"
)

// loggerTo logs errors only, for people, so that the demo's own lines stay
// readable.
func loggerTo(w io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	return logging.New(w, logging.Config{Format: "console", Level: "error"})
}
