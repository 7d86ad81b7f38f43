package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/services/sfsync/internal/cli"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type world struct {
	t    *testing.T
	db   *testenv.DB
	fx   *shopfixture.Fixture
	shop shopfixture.SFShop
	nats *testenv.Broker
	js   jetstream.JetStream
	sb   *sfsandbox.Server
	env  map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db, _, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(context.Background(), 1, sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.NATS(t)
	_, js := b.Connect(t)
	if err := broker.Declare(context.Background(), js, broker.Settings{LeaseTTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	sb := sfsandboxtest.New(t, sfsandboxtest.Config())
	return &world{t: t, db: db, fx: fx, shop: shop, nats: b, js: js, sb: sb, env: map[string]string{
		"MYSQL_DSN": db.DSN, "NATS_URL": b.URL, "SF_API_URL": sb.URL, "HTTP_ADDR": "", "LOG_LEVEL": "warn", "LOG_FORMAT": "console",
		"LEASE_TTL": "2s", "POLL_INTERVAL": "20ms", "SHIPPED_DELAY": "1s", "BATCH_LINGER": "50ms",
		"TICKET_BACKOFF_MIN": "200ms", "TICKET_BACKOFF_MAX": "1s", "SF_RATE_LIMIT": "none",
	}}
}

func (w *world) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), args, config.MapLookup(w.env), &out, &errOut)
	return out.String() + errOut.String(), err
}

func exitCode(err error) int {
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return 1
	}
	return 0
}

func (w *world) failedOrder() uint32 {
	w.t.Helper()
	o, err := w.fx.CreateSFOrder(context.Background(), w.shop, 7001, "amazon")
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.db.DB.Exec(`INSERT INTO ps_shoppingfeed_task_order (action, id_order, batch_id, update_at, date_add, date_upd, sfsync_operation, sfsync_failed_at, sfsync_error)
		VALUES ('CHECK_TICKET_SYNC_STATUS', ?, 'b-1', NOW(), NOW(), NOW(), 'ship', NOW(), 'A tracking number is required to ship this order')`, o); err != nil {
		w.t.Fatal(err)
	}
	return o
}

func TestStatusShowsTasksFailuresAndBacklog(t *testing.T) {
	w := newWorld(t)
	o := w.failedOrder()
	out, err := w.run("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"failed", "A tracking number is required", "SFSYNC_ORDERS", "sender-wait", "tickets pending"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	out, err = w.run("status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Failures []struct {
			OrderID uint32 `json:"order_id"`
			Error   string `json:"error"`
		} `json:"recent_failures"`
		Streams []struct{ Consumer string } `json:"streams"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if len(st.Failures) != 1 || st.Failures[0].OrderID != o || len(st.Streams) != 4 {
		t.Fatalf("status --json: %+v", st)
	}
}

func TestStatusListsSkippedHistoryRows(t *testing.T) {
	w := newWorld(t)
	store := prestashop.New(w.db.DB, "ps_")
	if err := store.RecordBadHistory(context.Background(), []prestashop.BadHistoryRow{
		{ID: 41, Reason: "id_order is NULL", At: time.Now()}, {ID: 42, Reason: "date_add is NULL", At: time.Now()},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := w.run("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"order_history rows skipped by the detector: 2", "41", "id_order is NULL", "42", "date_add is NULL"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
}

// A message the workers gave up on shows in status, and retry --dead sends
// it again to where it came from, once.
func TestDeadLettersShowAndAreSentAgain(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ev := events.Change{ShopDB: "prestashop", ShopID: 1, OrderID: 4242, Source: events.SourceDetector}
	orig := ev.Msg("cancel", "")
	orig.Header.Set(events.HeaderErrors, "19")
	if _, err := w.js.PublishMsg(ctx, events.DeadLetter(orig.Subject, orig.Data, orig.Header, "sender s1", "read sync task of order 4242: converting NULL to uint32")); err != nil {
		t.Fatal(err)
	}
	out, err := w.run("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"dead letters", ": 1", orig.Subject, "sender s1", "converting NULL to uint32"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if out, err := w.run("retry", "--dead", "--failed"); exitCode(err) != 2 {
		t.Fatalf("retry --dead --failed: exit %d, %s", exitCode(err), out)
	}
	if out, err := w.run("retry", "--dead"); err != nil {
		t.Fatalf("retry --dead: %v\n%s", err, out)
	}
	s, _ := w.js.Stream(ctx, broker.OrdersStream)
	m, err := s.GetLastMsgForSubject(ctx, orig.Subject)
	if err != nil {
		t.Fatalf("not sent again to %s: %v", orig.Subject, err)
	}
	if got, err := events.DecodeChange(m.Data); err != nil || got.OrderID != 4242 || m.Header.Get(events.HeaderErrors) != "" || m.Header.Get(events.HeaderDeadReason) != "" {
		t.Fatalf("sent again as %+v %v (%v)", got, m.Header, err)
	}
	dead, _ := w.js.Stream(ctx, broker.DeadStream)
	if info, err := dead.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("dead letters left: %+v %v", info, err)
	}
	if _, err := w.run("retry", "--dead"); exitCode(err) != 3 {
		t.Fatalf("retry --dead with nothing dead: exit %d, want 3", exitCode(err))
	}
}

// What status prints from the database cannot drive the terminal: an
// error text holding escape sequences is shown without them.
func TestStatusStripsTerminalEscapes(t *testing.T) {
	w := newWorld(t)
	o := w.failedOrder()
	if _, err := w.db.DB.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_error = ? WHERE id_order = ?",
		"\x1b[2J\x1b[Hall good\x1b]0;owned\x07 \x1b[31mrefused\x1b[0m", o); err != nil {
		t.Fatal(err)
	}
	out, err := w.run("status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\x1b\x07\u009b") {
		t.Fatalf("status prints control characters: %q", out)
	}
	if !strings.Contains(out, "all good refused") {
		t.Fatalf("status lost the text around the escapes:\n%s", out)
	}
}

func TestRetryRequeuesAndWakesTheSender(t *testing.T) {
	w := newWorld(t)
	o := w.failedOrder()
	if out, err := w.run("retry"); exitCode(err) != 2 {
		t.Fatalf("retry without flags: exit %d, %s", exitCode(err), out)
	}
	out, err := w.run("retry", "--order", fmt.Sprint(o))
	if err != nil {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	var action string
	var failed bool
	if err := w.db.DB.QueryRow("SELECT action, sfsync_failed_at IS NOT NULL FROM ps_shoppingfeed_task_order WHERE id_order = ?", o).Scan(&action, &failed); err != nil {
		t.Fatal(err)
	}
	if action != prestashop.ActionSyncStatus || failed {
		t.Fatalf("after retry: %s failed=%v", action, failed)
	}
	s, _ := w.js.Stream(context.Background(), broker.OrdersStream)
	if m, err := s.GetLastMsgForSubject(context.Background(), events.OrderStatusSubject(1, o)); err != nil || !strings.Contains(string(m.Data), `"retry"`) {
		t.Fatalf("no wake-up event: %v", err)
	}
	if _, err := w.run("retry", "--failed"); exitCode(err) != 3 {
		t.Fatalf("retry with nothing failed: exit %d, want 3", exitCode(err))
	}
}

func TestReplayMovesTheCheckpoint(t *testing.T) {
	w := newWorld(t)
	o, _ := w.fx.CreateSFOrder(context.Background(), w.shop, 7002, "amazon")
	h, _ := w.fx.ChangeState(context.Background(), o, shopfixture.StateProcessing)
	if _, err := w.run("replay"); exitCode(err) != 2 {
		t.Fatalf("replay without --from: exit %d", exitCode(err))
	}
	out, err := w.run("replay", "--from", fmt.Sprintf("id:%d", h))
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	kv, _ := w.js.KeyValue(context.Background(), broker.CheckpointBucket)
	cp, ok, err := detector.ReadCheckpoint(context.Background(), kv, detector.Key(w.db.Name, "ps_"))
	if err != nil || !ok || cp.Position != h-1 || !cp.Replay {
		t.Fatalf("checkpoint %+v ok=%v err=%v", cp, ok, err)
	}
	// Its database mirror too: a broker that loses its store next still
	// resumes from the replayed position.
	var mirror string
	if err := w.db.DB.QueryRow("SELECT value FROM ps_sfsync_meta WHERE name = ?", detector.MirrorName(detector.Key(w.db.Name, "ps_"))).Scan(&mirror); err != nil ||
		!strings.Contains(mirror, fmt.Sprintf(`"position":%d`, h-1)) {
		t.Fatalf("checkpoint mirror %q: %v", mirror, err)
	}
	if _, err := w.run("replay", "--from", "yesterday"); err == nil {
		t.Fatal("replay accepted a bad position")
	}
}

func TestCheckFindsBlockers(t *testing.T) {
	w := newWorld(t)
	out, err := w.run("check")
	if err != nil {
		t.Fatalf("check on a sound shop: exit %d\n%s", exitCode(err), out)
	}
	if !strings.Contains(out, "accepted by the API for store 1001") || !strings.Contains(out, "nothing blocks") {
		t.Fatalf("check output:\n%s", out)
	}
	ctx := context.Background()
	if err := w.fx.EnableModuleForShops(ctx, prestashop.ModuleLegacy, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyLegacyCanceled, "checked"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.DB.Exec("UPDATE ps_shoppingfeed_token SET content = 'unknown-token'"); err != nil {
		t.Fatal(err)
	}
	out, err = w.run("check")
	if exitCode(err) != 4 {
		t.Fatalf("check with the guard on: exit %d, want 4\n%s", exitCode(err), out)
	}
	for _, want := range []string{"SHOPPING_FLUX_STATUS_CANCELED", "rejects the token", "BLOCK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("check lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "unknown-token") {
		t.Fatal("check printed a token")
	}
	out, _ = w.run("check", "--json")
	var fs []map[string]any
	if err := json.Unmarshal([]byte(out), &fs); err != nil || len(fs) < 4 {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
}

func TestProbe(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer down.Close()
	var out bytes.Buffer
	if err := cli.Run(context.Background(), []string{"probe", ok.URL}, config.MapLookup(nil), &out, &out); err != nil {
		t.Fatalf("probe of a healthy URL: %v", err)
	}
	if err := cli.Run(context.Background(), []string{"probe", down.URL}, config.MapLookup(nil), &out, &out); exitCode(err) != 1 {
		t.Fatalf("probe of a 503: exit %d", exitCode(err))
	}
	if err := cli.Run(context.Background(), []string{"nonsense"}, config.MapLookup(nil), &out, &out); exitCode(err) != 2 {
		t.Fatalf("unknown command: exit %d", exitCode(err))
	}
}

// TestGracefulShutdownLosesNothing stops sfsync (as SIGTERM does) while
// cancellations stream in, starts it again, and checks that every order
// reached Shopping Feed exactly once and no task is left behind.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const n = 150
	var orders []uint32
	for i := range n {
		o, err := w.fx.CreateSFOrder(ctx, w.shop, int64(20000+i), "amazon")
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	var logs testenv.SyncBuffer
	start := func() (context.CancelFunc, chan error) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- cli.Run(rctx, []string{"run"}, config.MapLookup(w.env), &logs, &logs)
		}()
		return cancel, done
	}
	defer func() {
		if t.Failed() {
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "detector") && !strings.Contains(l, "msg=checkpoint") {
					t.Log(l)
				}
			}
		}
	}()
	cancel, done := start()
	// START_FROM=now: changes made before the detector first starts are not
	// its to send. Wait for its checkpoint.
	kv, _ := w.js.KeyValue(ctx, broker.CheckpointBucket)
	for waited := time.Now(); ; {
		if _, ok, _ := detector.ReadCheckpoint(ctx, kv, detector.Key(w.db.Name, "ps_")); ok {
			break
		}
		if time.Since(waited) > 15*time.Second {
			t.Fatal("the detector never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, o := range orders {
			if _, err := w.fx.ChangeState(ctx, o, shopfixture.StateCanceled); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v on shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop within 30 s")
	}
	t.Logf("stopped in %s with %d of %d orders sent", time.Since(stopped).Round(time.Millisecond), len(w.sb.Sandbox.Operations()), n)
	wg.Wait()
	cancel, done = start()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for len(w.sb.Sandbox.Operations()) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	count := map[string]int{}
	for _, op := range w.sb.Sandbox.Operations() {
		count[string(op.Entry)]++
	}
	if len(count) != n {
		t.Fatalf("%d distinct orders sent, want %d", len(count), n)
	}
	for e, c := range count {
		if c != 1 {
			t.Fatalf("%s sent %d times", e, c)
		}
	}
	var pending int
	deadline = time.Now().Add(20 * time.Second)
	for {
		_ = w.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order").Scan(&pending)
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pending != 0 {
		t.Fatalf("%d tasks left after every ticket resolved", pending)
	}
}

func TestMigrateAddsWhatIsMissingAndCheckSaysSo(t *testing.T) {
	w := newWorld(t)
	if out, err := w.run("migrate"); err != nil || !strings.Contains(out, "schema up to date") {
		t.Fatalf("migrate on a migrated schema: %v\n%s", err, out)
	}
	if _, err := w.db.DB.Exec("ALTER TABLE ps_shoppingfeed_task_order DROP INDEX sfsync_batch"); err != nil {
		t.Fatal(err)
	}
	out, err := w.run("check")
	if exitCode(err) != 4 || !strings.Contains(out, "sfsync_batch") || !strings.Contains(out, "sfsync migrate") {
		t.Fatalf("check with an index missing: exit %d\n%s", exitCode(err), out)
	}
	if out, err := w.run("migrate"); err != nil || !strings.Contains(out, "added index ps_shoppingfeed_task_order.sfsync_batch") {
		t.Fatalf("migrate with an index missing: %v\n%s", err, out)
	}
	if out, err := w.run("migrate"); err != nil || !strings.Contains(out, "schema up to date") {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}
}

// TestCheckAndMigrateAfterSchemaVersion1: a shop migrated by sfsync's schema
// version 1 has SFSYNC_WEBHOOK in the module's ENUM and a webhook task in
// the module's table; check says so (exit 4) and names sfsync migrate,
// which moves the task and gives the module its ENUM back.
func TestCheckAndMigrateAfterSchemaVersion1(t *testing.T) {
	w := newWorld(t)
	for _, q := range []string{
		"ALTER TABLE ps_shoppingfeed_task_order MODIFY COLUMN action ENUM(" + prestashop.ModuleActions + ",'SFSYNC_WEBHOOK') NOT NULL",
		"INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd, sfsync_history_last) VALUES ('SFSYNC_WEBHOOK', 9, NOW(), NOW(), NOW(), 90)",
	} {
		if _, err := w.db.DB.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	out, err := w.run("check")
	if exitCode(err) != 4 || !strings.Contains(out, "the module's own values of ps_shoppingfeed_task_order.action") || !strings.Contains(out, "sfsync migrate") {
		t.Fatalf("check on schema version 1: exit %d\n%s", exitCode(err), out)
	}
	if out, err := w.run("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	var moved int
	if err := w.db.DB.QueryRow("SELECT COUNT(*) FROM ps_sfsync_webhook_task WHERE id_order = 9 AND sfsync_history_last = 90").Scan(&moved); err != nil || moved != 1 {
		t.Fatalf("webhook task moved: %d (%v)", moved, err)
	}
	if out, err := w.run("migrate"); err != nil || !strings.Contains(out, "schema up to date") {
		t.Fatalf("migrate again: %v\n%s", err, out)
	}
}
