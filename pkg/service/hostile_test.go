package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// hostile draws a value a shop's text column may hold: empty, blanks,
// control and escape characters, quotes and SQL, invalid-looking numbers,
// very long text.
func hostile(r *rand.Rand, maxLen int) string {
	parts := []string{"", " ", "\x1b[2J\x1b[H", "\x1b]0;owned\x07", "\x00", "\r\n", "\t", "'; DROP TABLE ps_orders; --", `"}{"`,
		"\\", "%s%n", "-1", "0", "9999999999999999999999", "é", "\u202e", "\ufeff", "<script>", "NULL"}
	var b strings.Builder
	for range 1 + r.IntN(4) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	if r.IntN(4) == 0 {
		b.WriteString(strings.Repeat("x", maxLen))
	}
	s := []rune(b.String())
	if len(s) > maxLen {
		s = s[:maxLen]
	}
	return string(s)
}

// TestHostileShopData fills a shop's rows with hostile values and runs the
// detector, a sender and a ticket poller over them, for several seeds:
// every order whose data can be sent is sent once and confirmed; each
// order that cannot be is failed once with a message that says why, in the
// task row and once in the process log; order_history rows that cannot be
// read are skipped and listed; no worker exits; nothing stays claimed.
func TestHostileShopData(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { hostileRun(t, seed) })
	}
}

func hostileRun(t *testing.T, seed uint64) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 16))
	db, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	// An order_history as an altered table leaves it: signed, nullable.
	if _, err := db.DB.Exec("ALTER TABLE ps_order_history MODIFY id_order INT NULL, MODIFY id_order_state INT NULL, MODIFY date_add DATETIME NULL"); err != nil {
		t.Fatal(err)
	}
	nats := testenv.NATS(t)
	sb := sfsandboxtest.New(t, sfsandboxtest.Config())
	log, _ := workersLog(t)
	cfg := service.Config{DB: db.Config(), NATS: broker.Config{URL: nats.URL, Replicas: 1}, ShutdownTimeout: 5 * time.Second, LeaseTTL: 2 * time.Second}
	w := startWorkers(t, cfg, sb.URL, log, pipeline{})
	testenv.Eventually(t, 20*time.Second, "detector leads", w.detector.Leading)

	accepted := 0
	exec := func(q string, args ...any) bool {
		_, err := db.DB.Exec(q, args...)
		if err == nil {
			accepted++
		}
		return err == nil // a value the column refuses is one no shop holds
	}
	// Orders that can be sent, with hostile data where it does no harm.
	good := map[int64]uint32{}
	for i := range 8 {
		sfID := int64(600001 + 100*int64(seed) + int64(i))
		o, err := fx.CreateSFOrder(ctx, shop, sfID, "amazon")
		if err != nil {
			t.Fatal(err)
		}
		good[sfID] = o
		exec("UPDATE ps_shoppingfeed_order SET id_order_marketplace = ?, name_marketplace = ? WHERE id_order = ?", hostile(r, 50), hostile(r, 50), o)
		state := uint32(shopfixture.StateCanceled)
		if i%2 == 0 {
			state = shopfixture.StateShipped
			exec("UPDATE ps_order_carrier SET tracking_number = ? WHERE id_order = ?", hostile(r, 64), o)
		}
		if _, err := fx.ChangeState(ctx, o, state); err != nil {
			t.Fatal(err)
		}
	}
	if accepted == 0 {
		t.Fatal("the shop took none of the hostile values: the test proves nothing")
	}
	t.Logf("seed %d: %d hostile values written to the good orders' rows", seed, accepted)
	// Orders that cannot be sent.
	failing := map[uint32]string{}
	noID, err := fx.CreateOrder(ctx, shopfixture.OrderSpec{CarrierID: shop.CarrierID, SF: &shopfixture.SFLink{Channel: "amazon", TokenID: shop.TokenID}})
	if err != nil {
		t.Fatal(err)
	}
	failing[noID] = "neither a Shopping Feed order id"
	nullIDs, err := fx.CreateSFOrder(ctx, shop, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	exec("UPDATE ps_shoppingfeed_order SET id_internal_shoppingfeed = NULL, id_order_marketplace = '', name_marketplace = NULL WHERE id_order = ?", nullIDs)
	failing[nullIDs] = "neither a Shopping Feed order id"
	for o := range failing {
		if _, err := fx.ChangeState(ctx, o, shopfixture.StateCanceled); err != nil {
			t.Fatal(err)
		}
	}
	// A state no list holds, and rows no order can come from.
	unknown, err := fx.CreateSFOrder(ctx, shop, 690000+int64(seed), "amazon")
	if err != nil {
		t.Fatal(err)
	}
	exec("INSERT INTO ps_order_history (id_employee, id_order, id_order_state, date_add) VALUES (0, ?, 99999, NOW())", unknown)
	var badRows int
	for _, vals := range []string{"NULL, 6, NOW()", "-1, 6, NOW()", "0, 6, NOW()", "?, NULL, NOW()", "?, -7, NOW()", "?, 6, NULL"} {
		args := []any{}
		if strings.Contains(vals, "?") {
			args = append(args, unknown)
		}
		if !exec("INSERT INTO ps_order_history (id_employee, id_order, id_order_state, date_add) VALUES (0, "+vals+")", args...) {
			t.Fatalf("insert %s", vals)
		}
		badRows++
	}

	testenv.Eventually(t, 60*time.Second, "every good order sent and confirmed, every bad one failed", func() bool {
		ops := map[int64]int{}
		for _, op := range sb.Sandbox.Operations() {
			ops[entryID(t, op.Entry)]++
		}
		for sfID, o := range good {
			var n int
			if ops[sfID] != 1 || db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE id_order = ?", o).Scan(&n) != nil || n != 0 {
				return false
			}
		}
		for o := range failing {
			var n int
			if db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE id_order = ? AND sfsync_failed_at IS NOT NULL", o).Scan(&n) != nil || n != 1 {
				return false
			}
		}
		bh, err := store.BadHistory(ctx)
		return err == nil && bh.Total == badRows
	})
	for o, why := range failing {
		var msg string
		if err := db.DB.QueryRow("SELECT sfsync_error FROM ps_shoppingfeed_task_order WHERE id_order = ?", o).Scan(&msg); err != nil || !strings.Contains(msg, why) {
			t.Errorf("order %d: error %q (%v), want it to say %q", o, msg, err, why)
		}
		var n int
		if err := db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE object_id = ? AND level = 'error'", o).Scan(&n); err != nil || n != 1 {
			t.Errorf("order %d: %d error lines in the process log, want 1 (%v)", o, n, err)
		}
	}
	var tasks, claimed int
	if err := db.DB.QueryRow("SELECT COUNT(*), COUNT(sfsync_claim_owner) FROM ps_shoppingfeed_task_order").Scan(&tasks, &claimed); err != nil {
		t.Fatal(err)
	}
	if tasks != len(failing) || claimed != 0 {
		t.Errorf("%d tasks left (want the %d failed), %d claimed", tasks, len(failing), claimed)
	}
	for _, op := range sb.Sandbox.Operations() {
		if id := entryID(t, op.Entry); good[id] == 0 {
			t.Errorf("sent %s for %s, which is not one of the good orders", op.Operation, op.Entry)
		}
	}
	if !w.detector.Leading() {
		t.Error("the detector stopped leading")
	}
}

// entryID is the Shopping Feed order id of an operation's entry.
func entryID(t *testing.T, entry json.RawMessage) int64 {
	var e struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		t.Fatalf("entry %s: %v", entry, err)
	}
	return e.ID
}
