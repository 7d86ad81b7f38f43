package service_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestSendersAndPollersShareOneBudgetPerToken runs three senders and two
// ticket pollers, each its own connection and client, against a sandbox
// that enforces Shopping Feed's limit (10 requests per token in any 2 s):
// one order per request, so that they all want to send at once. Every
// update goes out once and no request is refused with 429. The senders run
// without shop leads, each sending what it fetches: the budget must hold
// whoever sends (a lead changes hands, a leader is passed over).
func TestSendersAndPollersShareOneBudgetPerToken(t *testing.T) {
	ctx := context.Background()
	db, fx, shop := sfShop(t)
	nats := testenv.NATS(t)
	sbCfg := sfsandboxtest.Config()
	sbCfg.Faults.RateLimit = sfsandbox.Rate{Requests: 10, Per: 2 * time.Second}
	sb := sfsandboxtest.New(t, sbCfg)
	log, _ := workersLog(t)
	cfg := service.Config{DB: db.Config(), NATS: broker.Config{URL: nats.URL, Replicas: 1}, ShutdownTimeout: 5 * time.Second, LeaseTTL: 2 * time.Second}
	w := startWorkers(t, cfg, sb.URL, log, pipeline{senders: 3, pollers: 2, rateLimit: "10/2s", batchSize: 1, noLead: true})
	testenv.Eventually(t, 20*time.Second, "detector leads", w.detector.Leading)

	const orders = 30
	for i := range orders {
		o, err := fx.CreateSFOrder(ctx, shop, int64(800001+i), "amazon")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.ChangeState(ctx, o, shopfixture.StateCanceled); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 90*time.Second, "every cancel sent and every ticket resolved", func() bool {
		var n int
		if err := db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return len(sb.Sandbox.Operations()) >= orders && n == 0
	})
	if got := len(sb.Sandbox.Operations()); got != orders {
		t.Errorf("%d operations for %d cancels", got, orders)
	}
	refused := 0
	for _, r := range sb.Sandbox.Requests() {
		if r.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused > 0 {
		t.Errorf("%d requests of %d refused with 429: the replicas did not share the token's budget", refused, len(sb.Sandbox.Requests()))
	}
}
