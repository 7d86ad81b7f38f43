package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/localmysql"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// MeasureRSS starts one detector, one sender and one ticket poller as
// processes, puts updates in flight — half shipments waiting out an hour's
// delay, half cancels sent whose tickets stay running — and, once they are
// all saved, sent or waiting, prints the resident memory of each process at
// steady state: "rss <service> <bytes>" lines, the largest of ten readings
// a second apart.
func MeasureRSS(ctx context.Context, o Options, updates int) error {
	if err := o.validate(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sfsync-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.Detectors, o.Senders, o.Pollers = 1, 1, 1
	c := newCluster(&o, dir, map[string][]string{
		"sfsandbox": {"SANDBOX_ERROR_RATE=0", "SANDBOX_THROTTLE_RATE=0", "SANDBOX_TICKET_FAILURE_RATE=0",
			"SANDBOX_RATE_LIMIT=none", "SANDBOX_STUCK_RATE=1", "SANDBOX_STUCK_FOR=1h"},
		"detector":     {"SHIPPED_DELAY=1h", "SWEEP_AFTER=1h"},
		"sender":       {"LOG_LEVEL=info", "SF_RATE_LIMIT=100/1s", "BATCH_LINGER=100ms"},
		"ticketpoller": {"TICKET_BACKOFF_MIN=2s", "TICKET_BACKOFF_MAX=10s"},
	})
	defer c.shutdown()
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	if c.mysql, err = localmysql.Start(); err != nil {
		return fmt.Errorf("start mariadb: %w", err)
	}
	if c.dsn, err = c.mysql.CreateDatabase(ctx, "rss"); err != nil {
		return err
	}
	db, err := sql.Open("mysql", c.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := shopfixture.Install(ctx, db, "ps_"); err != nil {
		return err
	}
	fx := shopfixture.New(db, "ps_")
	shop, err := fx.EnableShoppingFeed(ctx, 1, tokenOf(0), storeOf(0))
	if err != nil {
		return err
	}
	ids, _, err := fx.BulkSFOrders(ctx, shop, updates, shopfixture.StatePaymentAccepted, 700000)
	if err != nil {
		return err
	}
	// Tracking numbers, so that no shipment waits on one.
	if _, err := db.ExecContext(ctx, "INSERT INTO ps_order_carrier (id_order, id_carrier, tracking_number, date_add) SELECT id_order, id_carrier, CONCAT('T', id_order), NOW() FROM ps_orders"); err != nil {
		return err
	}
	if c.nats, err = newNATS(dir); err != nil {
		return err
	}
	if err := c.nats.startAndWait(); err != nil {
		return err
	}
	if err := c.startSandbox([]shopfixture.SFShop{shop}); err != nil {
		return err
	}
	c.startWorkers()
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	cancels := 0
	for start := 0; start < len(ids); start += 500 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for i, id := range ids[start:min(start+500, len(ids))] {
			st := shopfixture.StateShipped
			if (start+i)%2 == 1 {
				st = shopfixture.StateCanceled
				cancels++
			}
			if _, err := shopfixture.ChangeStateTx(ctx, tx, "ps_", id, st); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Out, "%d updates committed (%d cancels sent, %d shipments waiting); waiting until all are in flight\n", len(ids), cancels, len(ids)-cancels)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var tasks, checks int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(action = 'CHECK_TICKET_SYNC_STATUS'), 0) FROM ps_shoppingfeed_task_order").Scan(&tasks, &checks); err != nil {
			return err
		}
		if tasks == len(ids) && checks == cancels {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not all in flight after 5 min: %d tasks, %d sent", tasks, checks)
		}
		if !pause.For(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
	// Steady state: the poller re-checks its batches, the sender holds the
	// waiting shipments on the broker.
	pause.For(ctx, 10*time.Second)
	peak := map[string]int64{}
	for range 10 {
		for _, p := range append([]*proc{c.sandbox}, c.workers...) {
			r, err := p.rss()
			if err != nil {
				return err
			}
			peak[p.kind] = max(peak[p.kind], r)
		}
		if !pause.For(ctx, time.Second) {
			return ctx.Err()
		}
	}
	for _, k := range []string{"detector", "sender", "ticketpoller", "sfsandbox"} {
		fmt.Fprintf(o.Out, "rss %s %d\n", k, peak[k])
	}
	fmt.Fprintf(o.Out, "with %d updates in flight, MB: %s\n", len(ids), strings.Join([]string{
		"detector " + mb(peak["detector"]), "sender " + mb(peak["sender"]), "ticketpoller " + mb(peak["ticketpoller"]), "sfsandbox " + mb(peak["sfsandbox"])}, ", "))
	return nil
}

func mb(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }
