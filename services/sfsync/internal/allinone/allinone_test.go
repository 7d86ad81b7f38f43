package allinone_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/services/sfsync/internal/allinone"
)

// TestEmbeddedBrokerNeedsCredentialsBeyondLoopback: anyone who reaches the
// embedded broker could move the detector's checkpoint, so one listening
// beyond this machine is refused without credentials of its own.
func TestEmbeddedBrokerNeedsCredentialsBeyondLoopback(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "user.nk")
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := kp.Seed()
	if err := os.WriteFile(seed, s, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"loopback without credentials", map[string]string{"EMBEDDED_NATS_ADDR": "127.0.0.1:4222"}, ""},
		{"localhost", map[string]string{"EMBEDDED_NATS_ADDR": "localhost:4222"}, ""},
		{"ipv6 loopback", map[string]string{"EMBEDDED_NATS_ADDR": "[::1]:4222"}, ""},
		{"every interface", map[string]string{"EMBEDDED_NATS_ADDR": "0.0.0.0:4222"}, "EMBEDDED_NATS_ADDR"},
		{"empty host", map[string]string{"EMBEDDED_NATS_ADDR": ":4222"}, "EMBEDDED_NATS_ADDR"},
		{"a LAN address", map[string]string{"EMBEDDED_NATS_ADDR": "10.1.2.3:4222"}, "EMBEDDED_NATS_ADDR"},
		{"a host name", map[string]string{"EMBEDDED_NATS_ADDR": "sfsync.lan:4222"}, "EMBEDDED_NATS_ADDR"},
		{"every interface with a password", map[string]string{"EMBEDDED_NATS_ADDR": "0.0.0.0:4222", "NATS_USER": "sfsync", "NATS_PASSWORD": "pw"}, ""},
		{"every interface with an nkey", map[string]string{"EMBEDDED_NATS_ADDR": "0.0.0.0:4222", "NATS_NKEY": seed}, ""},
		{"user without password", map[string]string{"EMBEDDED_NATS_ADDR": "0.0.0.0:4222", "NATS_USER": "sfsync"}, "NATS_PASSWORD"},
		{"creds file", map[string]string{"NATS_CREDS": "/x.creds"}, "NATS_CREDS"},
		{"tls", map[string]string{"NATS_TLS_CA": "/ca.pem"}, "NATS_TLS_CA"},
		{"external broker is not checked here", map[string]string{"NATS_URL": "nats://nats:4222", "EMBEDDED_NATS_ADDR": "0.0.0.0:4222"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"MYSQL_DSN": "u@tcp(127.0.0.1:1)/x", "ROLES": "detector"}
			for k, v := range tt.env {
				env[k] = v
			}
			_, _, err := allinone.Load(t.Context(), config.MapLookup(env), io.Discard)
			if tt.wantVar == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.wantVar {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
}
