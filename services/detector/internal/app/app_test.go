package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/services/detector/internal/app"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"no dsn", map[string]string{}, "MYSQL_DSN"},
		{"bad poll", map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/x", "POLL_INTERVAL": "fast"}, "POLL_INTERVAL"},
		{"bad start", map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/x", "START_FROM": "yesterday"}, "START_FROM"},
		{"bad prefix", map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/x", "DB_PREFIX": "ps-;"}, "DB_PREFIX"},
		{"bad delay", map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/x", "SHIPPED_DELAY": "-1m"}, "SHIPPED_DELAY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := app.Run(context.Background(), nil, config.MapLookup(tt.env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
}

func TestRunServesReadyzWithRole(t *testing.T) {
	db, _, _ := testenv.Shop(t)
	b := testenv.NATS(t)
	port := testenv.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, nil, config.MapLookup(map[string]string{
			"MYSQL_DSN": db.DSN, "NATS_URL": strings.Replace(b.URL, "nats://", "nats://app:pw-NATS-secret@", 1), "HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port),
			"LEASE_TTL": "2s", "WEBHOOK_URL": "https://hook:pw-HOOK-secret@hook.example/in?token=q-HOOK-secret",
		}), out)
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			var body struct {
				Ready bool           `json:"ready"`
				Info  map[string]any `json:"info"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if body.Ready && body.Info["role"] == "leader" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never reported a ready leader; log:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// The start-up line: the configuration by variable name, readable
	// durations, every credential hidden (the test broker takes any user).
	logs := out.String()
	for _, want := range []string{`"POLL_INTERVAL":"200ms"`, `"LEASE_TTL":"2s"`, `"MYSQL_DSN":"[redacted]"`,
		`"NATS_URL":"nats://app:[redacted]@127.0.0.1:`, `"WEBHOOK_URL":"https://hook:[redacted]@hook.example/in?[redacted]"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "root@") || strings.Contains(logs, "-secret") {
		t.Fatalf("a credential reached the log:\n%s", logs)
	}
}

func TestCommandLine(t *testing.T) {
	testenv.CommandLine(t, "detector", func(ctx context.Context, args []string, stdout io.Writer) error {
		return app.Run(ctx, args, config.MapLookup(nil), stdout)
	}, "MYSQL_DSN", "NATS_URL", "HTTP_ADDR")
}
