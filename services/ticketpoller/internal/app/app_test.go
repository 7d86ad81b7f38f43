package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/testenv"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
	"github.com/sfsync/sfsync/services/ticketpoller/internal/app"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestConfigErrorsNameTheVariable(t *testing.T) {
	base := map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/x"}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"smtp without from", map[string]string{"SMTP_URL": "smtp://u:secret-smtp-pw@mail.example:587"}, "REPORT_FROM"},
		{"bad smtp url", map[string]string{"SMTP_URL": "smtp://u:secret-smtp-pw@mail.example:bad"}, "SMTP_URL"},
		{"smtp scheme", map[string]string{"SMTP_URL": "imap://u:secret-smtp-pw@mail.example"}, "SMTP_URL"},
		{"max age", map[string]string{"TICKET_MAX_AGE": "0s"}, "TICKET_MAX_AGE"},
		{"backoff", map[string]string{"TICKET_BACKOFF_MIN": "1m", "TICKET_BACKOFF_MAX": "2s"}, "TICKET_BACKOFF_MAX"},
		{"interval", map[string]string{"REPORT_INTERVAL": "often"}, "REPORT_INTERVAL"},
		{"report to", map[string]string{"REPORT_TO": "nobody"}, "REPORT_TO"},
		{"api url", map[string]string{"SF_API_URL": "ftp://x"}, "SF_API_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"SF_TOKEN": "secret-token-value"}
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
			if s := err.Error() + out.String(); strings.Contains(s, "secret-token-value") || strings.Contains(s, "secret-smtp-pw") {
				t.Fatalf("a secret reached an error or the log: %s", s)
			}
		})
	}
}

// TestRunFollowsABatchAndShutsDown runs the binary's wiring end to end: a
// batch published as the sender does is resolved, /readyz answers, the
// missing SMTP_URL is warned about, and a cancel stops everything.
func TestRunFollowsABatchAndShutsDown(t *testing.T) {
	ctx := t.Context()
	db, _, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, sfsandboxtest.Token, strconv.Itoa(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	sb := sfsandboxtest.New(t, sfsandboxtest.Config())
	b := testenv.NATS(t)
	port := testenv.FreePort(t)
	out := &syncBuf{}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(rctx, nil, config.MapLookup(map[string]string{
			"MYSQL_DSN": db.DSN, "NATS_URL": b.URL, "HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port),
			"SF_API_URL": sb.URL, "SF_TOKEN": "secret-token-value", "TICKET_BACKOFF_MIN": "100ms", "SHUTDOWN_TIMEOUT": "5s",
		}), out)
	}()
	t.Cleanup(func() { cancel(); <-done })

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(readyz)
		if err == nil {
			var body struct {
				Ready bool           `json:"ready"`
				Info  map[string]any `json:"info"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if body.Ready && body.Info["reports"] == "log" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz never ready; log:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	orderID, err := fx.CreateSFOrder(ctx, shop, 4242, "amazon")
	if err != nil {
		t.Fatal(err)
	}
	sf, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: sb.URL, RateLimit: "none"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := sf.Operate(ctx, config.Secret(sfsandboxtest.Token), shop.StoreID, shoppingfeed.OpShip,
		[]shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: 4242}, Carrier: "Colissimo", TrackingNumber: "6A1"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.DB.ExecContext(ctx, "INSERT INTO ps_shoppingfeed_task_order (action, id_order, batch_id, date_add, date_upd, sfsync_operation,"+
		" sfsync_store_id, sfsync_token_id, sfsync_progress_at) VALUES ('CHECK_TICKET_SYNC_STATUS', ?, ?, NOW(), NOW(), 'ship', ?, ?, NOW())",
		orderID, batch.ID, shop.StoreID, shop.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	taskID, _ := res.LastInsertId()
	body, _ := protojson.Marshal(&sfsyncv1.TicketCheck{StoreId: shop.StoreID, ShopId: 1, BatchId: batch.ID, Operation: "ship",
		TokenId: shop.TokenID, FirstSeen: timestamppb.Now(),
		Orders: []*sfsyncv1.TicketOrder{{OrderId: orderID, TaskId: uint64(taskID), SfOrderId: "4242"}}})
	_, js := b.Connect(t)
	msg := nats.NewMsg(events.TicketCheckSubject(shop.StoreID))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, "batch."+shop.StoreID+"."+batch.ID)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE id_shoppingfeed_task_order = ?", taskID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch was not resolved; log:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "SMTP_URL is not set") {
		t.Fatalf("no startup warning about SMTP_URL; log:\n%s", out.String())
	}
	cancel()
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run returned %v after a cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after a cancel")
	}
	if strings.Contains(out.String(), "secret-token-value") || strings.Contains(out.String(), sfsandboxtest.Token) {
		t.Fatal("a token reached the log")
	}
}

func TestCommandLine(t *testing.T) {
	testenv.CommandLine(t, "ticketpoller", func(ctx context.Context, args []string, stdout io.Writer) error {
		return app.Run(ctx, args, config.MapLookup(nil), stdout)
	}, "MYSQL_DSN", "NATS_URL", "HTTP_ADDR")
}
