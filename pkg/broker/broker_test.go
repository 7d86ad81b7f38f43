package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestDeclare(t *testing.T) {
	servers := map[string]func(testing.TB) *testenv.Broker{
		"in-process": testenv.NATS,
		"binary":     testenv.NATSBinary, // Debian's nats-server, the 2.9 line
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b := start(t)
			_, js := b.Connect(t)
			s := broker.Settings{LeaseTTL: 3 * time.Second}
			// Twice, and from two goroutines at once: declarations converge.
			errc := make(chan error, 2)
			for range 2 {
				go func() { errc <- broker.Declare(ctx, js, s) }()
			}
			for range 2 {
				if err := <-errc; err != nil {
					t.Fatalf("Declare: %v", err)
				}
			}
			if err := broker.Declare(ctx, js, s); err != nil {
				t.Fatalf("Declare again: %v", err)
			}
			for _, c := range []struct{ stream, consumer string }{
				{broker.OrdersStream, broker.SenderConsumer},
				{broker.OrdersStream, broker.SenderWaitConsumer},
				{broker.TicketsStream, broker.TicketConsumer},
				{broker.TicketsStream, broker.TicketWaitConsumer},
			} {
				cons, err := js.Consumer(ctx, c.stream, c.consumer)
				if err != nil {
					t.Fatalf("consumer %s: %v", c.consumer, err)
				}
				info, err := cons.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.Config.AckPolicy != jetstream.AckExplicitPolicy {
					t.Fatalf("%s ack policy %v", c.consumer, info.Config.AckPolicy)
				}
			}
			// A published change lands on the sender's consumer, not the wait one.
			if _, err := js.Publish(ctx, events.OrderStatusSubject(1, 42), []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			cons, _ := js.Consumer(ctx, broker.OrdersStream, broker.SenderConsumer)
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending != 1 {
				t.Fatalf("sender pending = %d, want 1", info.NumPending)
			}
			wait, _ := js.Consumer(ctx, broker.OrdersStream, broker.SenderWaitConsumer)
			if wi, _ := wait.Info(ctx); wi.NumPending != 0 {
				t.Fatalf("sender-wait pending = %d, want 0", wi.NumPending)
			}
			kv, err := js.KeyValue(ctx, broker.LeaseBucket)
			if err != nil {
				t.Fatal(err)
			}
			st, err := kv.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.TTL() != 3*time.Second {
				t.Fatalf("lease TTL %s", st.TTL())
			}
		})
	}
}

func TestSubjectsAreSafeTokens(t *testing.T) {
	if got := events.TicketCheckSubject("10.01 *>"); strings.ContainsAny(got[len("sfsync.ticket.check."):], ".*> ") {
		t.Fatalf("unsafe subject %q", got)
	}
	if got := events.OrderStatusSubject(3, 77); got != "sfsync.order.status.3.77" {
		t.Fatalf("subject %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     broker.Config
		wantVar string
	}{
		{"ok", broker.Config{Replicas: 1}, ""},
		{"replicas", broker.Config{Replicas: 0}, "NATS_REPLICAS"},
		{"cert without key", broker.Config{Replicas: 1, TLSCert: "c.pem"}, "NATS_TLS_CERT"},
		{"password without user", broker.Config{Replicas: 1, Password: "x"}, "NATS_USER"},
		{"user without password", broker.Config{Replicas: 1, User: "x"}, "NATS_PASSWORD"},
		{"user and password", broker.Config{Replicas: 1, User: "x", Password: "y"}, ""},
		{"nkey", broker.Config{Replicas: 1, NKey: "user.nk"}, ""},
		{"nkey and user", broker.Config{Replicas: 1, NKey: "user.nk", User: "x", Password: "y"}, "NATS_NKEY"},
		{"nkey and creds", broker.Config{Replicas: 1, NKey: "user.nk", Creds: "x.creds"}, "NATS_NKEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantVar) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
			}
		})
	}
}
