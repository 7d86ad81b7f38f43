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
			"MYSQL_DSN": db.DSN, "NATS_URL": b.URL, "HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port),
			"LEASE_TTL": "2s",
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
	if strings.Contains(out.String(), "root@") {
		t.Fatal("the DSN reached the log")
	}
}

func TestCommandLine(t *testing.T) {
	testenv.CommandLine(t, "detector", func(ctx context.Context, args []string, stdout io.Writer) error {
		return app.Run(ctx, args, config.MapLookup(nil), stdout)
	}, "MYSQL_DSN", "NATS_URL", "HTTP_ADDR")
}
