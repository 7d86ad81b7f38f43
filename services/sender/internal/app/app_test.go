package app_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/services/sender/internal/app"
)

func TestConfigErrorsNameTheVariable(t *testing.T) {
	base := map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/x"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"mode", map[string]string{"SYNC_MODE": "cron"}, "SYNC_MODE"},
		{"batch size", map[string]string{"BATCH_SIZE": "500"}, "BATCH_SIZE"},
		{"token without store", map[string]string{"SF_TOKEN": "secret-token-value"}, "SF_TOKEN"},
		{"linger", map[string]string{"BATCH_LINGER": "soon"}, "BATCH_LINGER"},
		{"attempts", map[string]string{"SEND_MAX_ATTEMPTS": "0"}, "SEND_MAX_ATTEMPTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var out bytes.Buffer
			err := app.Run(context.Background(), nil, config.MapLookup(env), &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error()+out.String(), "secret-token-value") {
				t.Fatal("the token reached an error or the log")
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	testenv.CommandLine(t, "sender", func(ctx context.Context, args []string, stdout io.Writer) error {
		return app.Run(ctx, args, config.MapLookup(nil), stdout)
	}, "MYSQL_DSN", "NATS_URL", "HTTP_ADDR")
}
