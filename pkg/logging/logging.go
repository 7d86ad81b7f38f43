// Package logging builds the slog logger every service uses: JSON for
// machines (the default) or tint's coloured console output for people.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/lmittmann/tint"
)

// Config is the logging part of every service's configuration.
type Config struct {
	Format string `env:"LOG_FORMAT, default=json"`
	Level  string `env:"LOG_LEVEL, default=info"`
}

// New returns a logger writing to w and the LevelVar that controls it.
func New(w io.Writer, c Config) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := lv.UnmarshalText([]byte(strings.ToUpper(c.Level))); err != nil {
		return nil, nil, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", c.Level)
	}
	var h slog.Handler
	switch strings.ToLower(c.Format) {
	case "json", "":
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})
	case "console", "text":
		h = tint.NewHandler(w, &tint.Options{Level: lv, TimeFormat: time.TimeOnly})
	default:
		return nil, nil, fmt.Errorf("LOG_FORMAT: %q is not json or console", c.Format)
	}
	return slog.New(h), lv, nil
}

// Discard returns a logger that writes nothing, for tests that do not read logs.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
