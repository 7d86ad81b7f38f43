package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestModuleReinstallWhileRunning replays what the Shopping Feed module's
// re-install (its upgrades 2.0.3 and 2.3.0, a reset) does to its tables,
// in strict mode, while the detector, a sender and a ticket poller run
// with both targets and updates of both kinds are pending: every index
// but the primary key is dropped, action is rewritten to the module's six
// ENUM values, and the module's unique key is added again. Every statement
// of the module must succeed, `sfsync check` must see the indexes missing,
// the schema watch must add them back, and every update must still reach
// Shopping Feed and the webhook exactly once.
func TestModuleReinstallWhileRunning(t *testing.T) {
	ctx := context.Background()
	db, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	nats := testenv.NATS(t)
	sb := sfsandboxtest.New(t, sfsandboxtest.Config())

	hook := newHookReceiver(t)
	log, logs := workersLog(t)
	cfg := service.Config{
		DB: db.Config(), NATS: broker.Config{URL: nats.URL, Replicas: 1},
		ShutdownTimeout: 5 * time.Second, LeaseTTL: 2 * time.Second, Migrate: service.MigrateAuto,
	}
	w := startWorkers(t, cfg, sb.URL, log, pipeline{
		schemaInterval: 500 * time.Millisecond,
		targets:        hook.targets(),
	})
	testenv.Eventually(t, 20*time.Second, "detector leads", w.detector.Leading)

	count := func(q string) int {
		t.Helper()
		var n int
		if err := db.DB.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	// Shipments without a tracking number: both updates of each order wait
	// for it, pending, in the module's table and in sfsync's.
	type order struct {
		id  uint32
		ref string
		sf  int64
	}
	var orders []order
	for i := range 4 {
		sfID := int64(810001 + i)
		o, err := fx.CreateSFOrder(ctx, shop, sfID, "amazon")
		if err != nil {
			t.Fatal(err)
		}
		var ref string
		if err := db.DB.QueryRow("SELECT reference FROM ps_orders WHERE id_order = ?", o).Scan(&ref); err != nil {
			t.Fatal(err)
		}
		if _, err := fx.ChangeState(ctx, o, shopfixture.StateShipped); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, order{id: o, ref: ref, sf: sfID})
	}
	testenv.Eventually(t, 20*time.Second, "both kinds of task pending", func() bool {
		return count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'SYNC_STATUS'") == len(orders) &&
			count("SELECT COUNT(*) FROM ps_sfsync_webhook_task WHERE action = 'SFSYNC_WEBHOOK'") == len(orders)
	})

	// The module's re-install, statement by statement, on a connection of
	// its own in strict mode, while sfsync's migration lock is held so that
	// the check in between sees what the re-install left.
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got int
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+prestashop.MigrationLock+", 10)", "ps_").Scan(&got); err != nil || got != 1 {
		t.Fatalf("take sfsync's migration lock: %d %v", got, err)
	}
	module := []string{}
	for _, table := range []string{"ps_shoppingfeed_task_order", "ps_shoppingfeed_processlogger"} {
		rows, err := conn.QueryContext(ctx, "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'", table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			module = append(module, "ALTER TABLE `"+table+"` DROP KEY `"+name+"`")
		}
		rows.Close()
	}
	module = append(module,
		"ALTER TABLE `ps_shoppingfeed_task_order` MODIFY `action`  ENUM("+prestashop.ModuleActions+") NOT NULL",
		"ALTER TABLE `ps_shoppingfeed_task_order` ADD UNIQUE KEY (`action`, `id_order`, `ticket_number`)")
	for _, q := range module {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("the module's re-install failed: %s: %v", q, err)
		}
	}
	st, err := store.CheckSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	missing := strings.Join(st.Missing, ", ")
	for _, ix := range []string{"sfsync_due", "sfsync_order", "sfsync_batch", "sfsync_failed", "sfsync_object"} {
		if !strings.Contains(missing, "."+ix) {
			t.Errorf("check after the re-install misses index %s: %s", ix, missing)
		}
	}
	if _, err := conn.ExecContext(ctx, "SELECT RELEASE_LOCK("+prestashop.MigrationLock+")", "ps_"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the schema healed", func() bool {
		st, err := store.CheckSchema(ctx)
		return err == nil && len(st.Missing) == 0 && strings.Contains(logs.String(), "schema healed")
	})

	// The tracking numbers come: every update goes out, once.
	for _, o := range orders {
		if err := fx.SetTracking(ctx, o.id, fmt.Sprintf("TRK%d", o.sf)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, "every update sent and every task done", func() bool {
		return len(hook.delivered()) == len(orders) && len(sb.Sandbox.Operations()) == len(orders) &&
			count("SELECT COUNT(*) FROM ps_shoppingfeed_task_order") == 0 && count("SELECT COUNT(*) FROM ps_sfsync_webhook_task") == 0
	})
	sent := map[int64][]string{}
	for _, op := range sb.Sandbox.Operations() {
		var e struct {
			ID int64 `json:"id"`
		}
		_ = json.Unmarshal(op.Entry, &e)
		sent[e.ID] = append(sent[e.ID], op.Operation)
	}
	hooked := hook.delivered()
	for _, o := range orders {
		if fmt.Sprint(sent[o.sf]) != "[ship]" {
			t.Errorf("order %d: Shopping Feed received %v, want [ship]", o.id, sent[o.sf])
		}
		if fmt.Sprint(hooked[o.ref]) != "[SHIPPED]" {
			t.Errorf("order %d: the webhook received %v, want [SHIPPED]", o.id, hooked[o.ref])
		}
	}
	if typ := columnType(t, db, "ps_shoppingfeed_task_order", "action"); typ != "enum("+prestashop.ModuleActions+")" {
		t.Errorf("action is %s after healing, want the module's own values", typ)
	}
}

func columnType(t *testing.T, db *testenv.DB, table, column string) string {
	t.Helper()
	var typ string
	if err := db.DB.QueryRow("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, column).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}

// hookReceiver is a webhook target that records each order's statuses.
type hookReceiver struct {
	url string
	mu  sync.Mutex
	got map[string][]string // order reference → statuses delivered
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{got: map[string][]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			ShopOrderID string `json:"shopOrderId"`
			Status      string `json:"status"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.got[p.ShopOrderID] = append(h.got[p.ShopOrderID], p.Status)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/orders"
	return h
}

// targets sends to Shopping Feed and to this receiver.
func (h *hookReceiver) targets() targets.Config {
	return targets.Config{Targets: "shoppingfeed,webhook", Hook: targets.WebhookConfig{URL: h.url, Secret: "hook-secret",
		KeyID: "sfsync", Orders: "shoppingfeed", ExternalID: "shoppingfeed_id", Timeout: 5 * time.Second}}
}

// delivered returns a copy of what was received, by order reference.
func (h *hookReceiver) delivered() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]string, len(h.got))
	for k, v := range h.got {
		out[k] = append([]string(nil), v...)
	}
	return out
}
