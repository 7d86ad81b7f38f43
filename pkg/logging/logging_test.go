package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sfsync/sfsync/pkg/logging"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     logging.Config
		wantErr string
	}{
		{"json", logging.Config{Format: "json", Level: "debug"}, ""},
		{"console", logging.Config{Format: "console", Level: "warn"}, ""},
		{"bad format", logging.Config{Format: "xml", Level: "info"}, "LOG_FORMAT"},
		{"bad level", logging.Config{Format: "json", Level: "loud"}, "LOG_LEVEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, _, err := logging.New(&buf, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Error("boom", "order_id", 7)
			if !strings.Contains(buf.String(), "boom") {
				t.Fatalf("nothing logged: %q", buf.String())
			}
		})
	}
}

func TestLevelVarChangesLevel(t *testing.T) {
	var buf bytes.Buffer
	log, lv, err := logging.New(&buf, logging.Config{Format: "json", Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	lv.Set(-4)
	log.Debug("shown", "shop_id", 1)
	if strings.Contains(buf.String(), "hidden") || !strings.Contains(buf.String(), "shown") {
		t.Fatalf("level not honoured: %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
}
