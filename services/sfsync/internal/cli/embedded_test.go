package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/services/sfsync/internal/cli"
)

// TestEmbeddedBrokerWithCredentials runs sfsync with its embedded broker
// and credentials of its own (a password, then an nkey): its workers get
// through (they declare the streams), a client without the credentials is
// turned away, and the operator commands, reading the same environment,
// get through too.
func TestEmbeddedBrokerWithCredentials(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		opt  func() (nats.Option, error)
	}{
		{"password", map[string]string{"NATS_USER": "sfsync", "NATS_PASSWORD": "pw-embedded"},
			func() (nats.Option, error) { return nats.UserInfo("sfsync", "pw-embedded"), nil }},
		{"nkey", map[string]string{"NATS_NKEY": seedFile},
			func() (nats.Option, error) { return nats.NkeyOptionFromSeed(seedFile) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			delete(w.env, "NATS_URL")
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			w.env["EMBEDDED_NATS_ADDR"] = addr
			w.env["DATA_DIR"] = t.TempDir()
			w.env["LOG_LEVEL"] = "info"
			for k, v := range tt.env {
				w.env[k] = v
			}
			ctx, cancel := context.WithCancel(t.Context())
			var logs testenv.SyncBuffer
			done := make(chan error, 1)
			go func() { done <- cli.Run(ctx, []string{"run"}, config.MapLookup(w.env), &logs, &logs) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			opt, err := tt.opt()
			if err != nil {
				t.Fatal(err)
			}
			var nc *nats.Conn
			testenv.Eventually(t, 20*time.Second, "sfsync started with the embedded broker", func() bool {
				return strings.Contains(logs.String(), "sfsync started")
			})
			testenv.Eventually(t, 10*time.Second, "the workers declared the streams", func() bool {
				if nc == nil {
					if nc, err = nats.Connect("nats://"+addr, opt); err != nil {
						return false
					}
				}
				js, _ := jetstream.New(nc)
				_, err := js.Stream(ctx, broker.OrdersStream)
				return err == nil
			})
			defer nc.Close()
			if anon, err := nats.Connect("nats://"+addr, nats.MaxReconnects(0)); err == nil {
				anon.Close()
				t.Fatal("a client without credentials was let in")
			} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("a client without credentials: %v, want an authorization error", err)
			}
			out, err := w.run("status", "--json")
			if err != nil || !strings.Contains(out, "SFSYNC_ORDERS") {
				t.Fatalf("status with the same environment: %v\n%s", err, out)
			}
		})
	}
}
