package service_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// readmeGrants is the README's block of grants for the runtime user.
func readmeGrants(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## MySQL grants.*?```sql\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md: no ```sql block under ## MySQL grants")
	}
	var out []string
	for _, stmt := range strings.Split(string(m[1]), ";") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			out = append(out, strings.Join(lines, " "))
		}
	}
	return out
}

// runtimeUser creates a user with exactly the README's grants on db and
// returns a DSN that connects as it.
func runtimeUser(t *testing.T, db *testenv.DB) config.Secret {
	t.Helper()
	mc, err := mysql.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	user, pass := db.Name, "runtime-pw"
	grants := readmeGrants(t)
	for _, host := range []string{"%", "localhost"} {
		for _, stmt := range grants {
			stmt = strings.ReplaceAll(stmt, "prestashop.", "`"+db.Name+"`.")
			stmt = strings.ReplaceAll(stmt, "'sfsync'@'%'", "'"+user+"'@'"+host+"'")
			stmt = strings.ReplaceAll(stmt, "IDENTIFIED BY '…'", "IDENTIFIED BY '"+pass+"'")
			if _, err := db.DB.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	t.Cleanup(func() {
		for _, host := range []string{"%", "localhost"} {
			_, _ = db.DB.Exec("DROP USER IF EXISTS '" + user + "'@'" + host + "'")
		}
	})
	mc.User, mc.Passwd = user, pass
	return config.Secret(mc.FormatDSN())
}

// TestPipelineRunsAsTheLeastPrivilegedUser runs the detector, the sender
// and the ticket poller as a user with only the README's grants, on a
// schema an admin migrated, with both targets: updates go out to Shopping
// Feed and the webhook (a partial refund from an order slip too) and their
// tickets resolve, and nothing the workers do is refused, but the gap
// probe's optional read.
func TestPipelineRunsAsTheLeastPrivilegedUser(t *testing.T) {
	ctx := context.Background()
	db, fx, shop := sfShop(t)
	dsn := runtimeUser(t, db)
	nats := testenv.NATSBinary(t)
	sb := sfsandboxtest.New(t, sfsandboxtest.Config())
	log, logs := workersLog(t)
	cfg := service.Config{
		DB: prestashop.Config{DSN: dsn, Prefix: "ps_"}, NATS: broker.Config{URL: nats.URL, Replicas: 1},
		ShutdownTimeout: 5 * time.Second, LeaseTTL: 2 * time.Second, Migrate: service.MigrateAuto,
	}
	if err := fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyPartialRefund, "1"); err != nil {
		t.Fatal(err)
	}
	hook := newHookReceiver(t)
	w := startWorkers(t, cfg, sb.URL, log, pipeline{targets: hook.targets()})
	testenv.Eventually(t, 20*time.Second, "detector leads", w.detector.Leading)

	var ids []int64
	for i, op := range []uint32{shopfixture.StateCanceled, shopfixture.StateShipped, shopfixture.StateRefunded} {
		sfID := int64(700001 + i)
		o, err := fx.CreateSFOrder(ctx, shop, sfID, "amazon")
		if err != nil {
			t.Fatal(err)
		}
		if op == shopfixture.StateShipped {
			if err := fx.SetTracking(ctx, o, "TRK-LP"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fx.ChangeState(ctx, o, op); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sfID)
	}
	refunded, err := fx.CreateSFOrder(ctx, shop, 700009, "amazon")
	if err != nil {
		t.Fatal(err)
	}
	product, err := fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: "LP-1"})
	if err != nil {
		t.Fatal(err)
	}
	line, err := fx.AddOrderLine(ctx, refunded, product, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.CreateSlip(ctx, refunded, false, shopfixture.SlipLine{OrderDetailID: line, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, 700009)
	// The webhook's stock mapping has no refunded state: the cancel, the
	// shipment and the partially refunded order's Payment accepted reach it.
	testenv.Eventually(t, 60*time.Second, "every update sent and every ticket resolved", func() bool {
		var n int
		if err := db.DB.QueryRow("SELECT (SELECT COUNT(*) FROM ps_shoppingfeed_task_order) + (SELECT COUNT(*) FROM ps_sfsync_webhook_task)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return len(sb.Sandbox.Operations()) == len(ids) && len(hook.delivered()) == 3 && n == 0
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "denied") && !strings.Contains(line, "gap writer check disabled") {
			t.Errorf("a statement was refused to the runtime user: %s", line)
		}
	}
}

// TestMissingSchemaNamesSfsyncMigrate: a worker that finds the schema
// incomplete migrates when MIGRATE=auto and its user may, and otherwise
// exits with a message that names what is missing and `sfsync migrate`.
func TestMissingSchemaNamesSfsyncMigrate(t *testing.T) {
	ctx := context.Background()
	db, store, _ := testenv.Shop(t)
	if _, err := db.DB.Exec("ALTER TABLE ps_shoppingfeed_task_order DROP INDEX sfsync_due"); err != nil {
		t.Fatal(err)
	}
	nats := testenv.NATS(t)
	open := func(dsn config.Secret, mode string) error {
		cfg := service.Config{DB: prestashop.Config{DSN: dsn, Prefix: "ps_"}, NATS: broker.Config{URL: nats.URL, Replicas: 1},
			ShutdownTimeout: time.Second, LeaseTTL: 2 * time.Second, Migrate: mode, HTTPAddr: ""}
		d, err := service.Open(ctx, "test", cfg, testLog(&testenv.SyncBuffer{}), service.Options{})
		if err == nil {
			d.Close()
		}
		return err
	}
	for _, tt := range []struct {
		name string
		dsn  config.Secret
		mode string
	}{
		{"MIGRATE=off", config.Secret(db.DSN), service.MigrateOff},
		{"the runtime user", runtimeUser(t, db), service.MigrateAuto},
	} {
		err := open(tt.dsn, tt.mode)
		if err == nil || !strings.Contains(err.Error(), "sfsync migrate") || !strings.Contains(err.Error(), "sfsync_due") {
			t.Fatalf("%s: start-up error %v, want one naming the missing index and sfsync migrate", tt.name, err)
		}
	}
	if err := open(config.Secret(db.DSN), service.MigrateAuto); err != nil {
		t.Fatalf("an admin with MIGRATE=auto: %v", err)
	}
	st, err := store.CheckSchema(ctx)
	if err != nil || len(st.Missing) != 0 {
		t.Fatalf("after MIGRATE=auto: missing %v (%v)", st.Missing, err)
	}
}
