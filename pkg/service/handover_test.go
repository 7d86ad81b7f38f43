package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestAKilledSendersOrdersMoveOn: a sender dies, as with kill -9, while it
// holds claimed orders (batch mode, waiting for its round): it neither
// releases its claims nor answers its messages. With the default CLAIM_TTL
// and the sender consumers' AckWait, another sender sends every one of
// those orders, once, well before the old two-minute claim would have run
// out.
func TestAKilledSendersOrdersMoveOn(t *testing.T) {
	ctx := context.Background()
	db, fx, shop := sfShop(t)
	nats := testenv.NATS(t)
	sb := sfsandboxtest.New(t, sfsandboxtest.Config())
	log, _ := workersLog(t)
	cfg := service.Config{DB: db.Config(), NATS: broker.Config{URL: nats.URL, Replicas: 1}, ShutdownTimeout: 5 * time.Second, LeaseTTL: 2 * time.Second}
	// The sweeper's default SWEEP_AFTER (10 min): the messages themselves
	// must come back, within the consumers' AckWait.
	w := startWorkers(t, cfg, sb.URL, log, pipeline{senders: -1, sweepAfter: 10 * time.Minute})
	testenv.Eventually(t, 20*time.Second, "detector leads", w.detector.Leading)

	var defaults sender.Config
	if err := config.Load(ctx, config.MapLookup(nil), &defaults); err != nil {
		t.Fatal(err)
	}
	// The doomed sender gathers its orders for an hour-long batch round.
	acfg := senderConfig(pipeline{})
	acfg.Mode, acfg.Interval, acfg.ClaimTTL = sender.ModeBatch, time.Hour, defaults.ClaimTTL
	a, ad := newSender(t, "doomed", cfg, acfg, sb.URL, log, pipeline{})
	actx, kill := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = a.Run(actx) }()

	const orders = 5
	for i := range orders {
		o, err := fx.CreateSFOrder(ctx, shop, int64(810001+i), "amazon")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.ChangeState(ctx, o, shopfixture.StateCanceled); err != nil {
			t.Fatal(err)
		}
	}
	held := func() int {
		var n int
		if err := db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE sfsync_claim_owner = 'doomed' AND sfsync_claim_until > NOW(3)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testenv.Eventually(t, 20*time.Second, "the doomed sender holds every order", func() bool { return held() == orders })

	// kill -9: its connections die first, so it can release nothing.
	_ = ad.DB.Close()
	ad.NC.Close()
	kill()
	<-stopped

	b, _ := newSender(t, "survivor", cfg, senderConfig(pipeline{}), sb.URL, log, pipeline{})
	runUntilCleanup(t, "survivor", b.Run)
	testenv.Eventually(t, 45*time.Second, "the survivor sends the dead sender's orders", func() bool {
		return len(sb.Sandbox.Operations()) >= orders
	})
	if got := len(sb.Sandbox.Operations()); got != orders {
		t.Fatalf("%d operations for %d orders", got, orders)
	}
}
