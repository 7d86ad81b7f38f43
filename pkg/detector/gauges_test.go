package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// gathered returns the samples of family name in reg, by their first label
// value ("" when unlabelled); ok is false when reg exports no such family.
func gathered(t *testing.T, reg *prometheus.Registry, name string) (map[string]float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		out := map[string]float64{}
		for _, m := range mf.GetMetric() {
			k := ""
			if len(m.GetLabel()) > 0 {
				k = m.GetLabel()[0].GetValue()
			}
			out[k] += m.GetGauge().GetValue()
		}
		return out, true
	}
	return nil, false
}

// TestSharedGaugesLeaderOnly: the gauges read from the database and the
// broker are the same whichever replica reads them, so only the leading
// detector exports them (a sum over replicas is then right), and the next
// leader takes over.
func TestSharedGaugesLeaderOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.start(testConfig(), "a")
	e.waitLeader(a)
	b := e.start(testConfig(), "b")
	for _, q := range []string{
		"INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd) VALUES ('" + prestashop.ActionSyncStatus + "', 901, NOW() - INTERVAL 90 SECOND, NOW(), NOW())",
		"INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd) VALUES ('" + prestashop.ActionSyncStatus + "', 902, NOW() + INTERVAL 1 HOUR, NOW(), NOW())",
		"INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd, sfsync_failed_at) VALUES ('" + prestashop.ActionSyncStatus + "', 903, NOW(), NOW(), NOW(), NOW())",
		"INSERT INTO ps_shoppingfeed_task_order (action, id_order, ticket_number, batch_id, update_at, date_add, date_upd) VALUES ('" + prestashop.ActionCheckTicketStatus + "', 904, 't1', 'b1', NULL, NOW(), NOW())",
	} {
		if _, err := e.db.DB.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*running{a, b} {
		if err := r.d.ReadGauges(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tasks, ok := gathered(t, a.reg, "sfsync_tasks")
	if !ok || tasks["due"] != 1 || tasks["waiting"] != 1 || tasks["failed"] != 1 {
		t.Fatalf("leader's sfsync_tasks = %v (exported %v), want due 1, waiting 1, failed 1", tasks, ok)
	}
	if oldest, _ := gathered(t, a.reg, "sfsync_tasks_oldest_due_seconds"); oldest[""] < 89 {
		t.Fatalf("oldest due = %v, want at least 89 s", oldest)
	}
	if tickets, _ := gathered(t, a.reg, "sfsync_tickets_pending"); tickets["0"] != 1 {
		t.Fatalf("tickets pending = %v, want 1 for shop 0 (its order is gone)", tickets)
	}
	if unreported, _ := gathered(t, a.reg, "sfsync_failures_unreported"); unreported["0"] != 1 {
		t.Fatalf("failures unreported = %v, want 1", unreported)
	}
	if backlog, _ := gathered(t, a.reg, "sfsync_consumer_pending"); len(backlog) == 0 {
		t.Fatal("the leader exports no consumer backlog")
	}
	for _, name := range []string{"sfsync_tasks", "sfsync_tasks_oldest_due_seconds", "sfsync_tickets_pending", "sfsync_failures_unreported", "sfsync_consumer_pending"} {
		if _, ok := gathered(t, b.reg, name); ok {
			t.Fatalf("the waiting replica exports %s", name)
		}
	}
	a.stop()
	e.waitLeader(b)
	e.eventually(10*time.Second, "the new leader exports the shared gauges", func() bool {
		tasks, ok := gathered(t, b.reg, "sfsync_tasks")
		return ok && tasks["due"] == 1
	})
	if _, ok := gathered(t, a.reg, "sfsync_tasks"); ok {
		t.Fatal("the stopped replica still exports sfsync_tasks")
	}
}
