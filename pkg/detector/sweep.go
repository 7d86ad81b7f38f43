package detector

import (
	"context"
	"fmt"
	"time"

	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/targets"
)

// sweep republishes, every SweepInterval, the tasks that made no progress
// for SweepAfter: the task table is the truth, so an event the broker lost
// (even a wiped store) is recovered from it.
func (d *Detector) sweep(ctx context.Context) error {
	t := time.NewTicker(d.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := d.SweepOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.Warn("sweep failed", "err", err)
		} else if n > 0 {
			d.log.Info("sweeper republished stuck tasks", "tasks", n)
		}
	}
}

// SweepOnce republishes the stuck tasks once and returns how many.
func (d *Detector) SweepOnce(ctx context.Context) (int, error) {
	return d.sweepOnce(ctx, d.cfg.SweepAfter)
}

// sweepLost republishes, at once, every task the broker may have lost with
// its store: each due update and each batch whose tickets are followed,
// whatever their last progress. An update whose event did survive is
// handled once all the same (the sender's claim and the task row decide),
// and a ticket check is idempotent; updates still waiting for their time
// are left to the regular sweeper.
func (d *Detector) sweepLost(ctx context.Context) {
	// A negative age takes the tasks touched this very second too
	// (sfsync_progress_at has whole seconds).
	n, err := d.sweepOnce(ctx, -time.Second)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("republishing the tasks the broker lost failed; the sweeper will", "err", err)
		}
		return
	}
	d.log.Info("republished the tasks the broker lost", "tasks", n)
}

func (d *Detector) sweepOnce(ctx context.Context, after time.Duration) (int, error) {
	stuck, err := d.store.StuckTasks(ctx, after, 1000)
	if err != nil || len(stuck) == 0 {
		return 0, err
	}
	now := time.Now()
	batches := map[string]*events.Batch{}
	var order []string
	var ids []uint64
	for _, t := range stuck {
		switch t.Action {
		case prestashop.ActionSyncStatus, prestashop.ActionWebhook, prestashop.ActionPartialRefund:
			ev := events.Change{ShopDB: d.shopDB, ShopID: t.ShopID, OrderID: t.OrderID, TaskID: t.TaskID, Source: events.SourceSweeper}
			switch t.Action {
			case prestashop.ActionWebhook:
				ev.Target = targets.Webhook
			case prestashop.ActionPartialRefund:
				ev.Action = t.Action
			}
			if _, err := d.js.PublishMsg(ctx, ev.Msg("none", events.SweptID(d.key, t.TaskID, now))); err != nil {
				return 0, fmt.Errorf("republish task %d: %w", t.TaskID, err)
			}
			d.m.swept.WithLabelValues(t.Action).Inc()
		case prestashop.ActionCheckTicketStatus, prestashop.ActionCheckTicketPartialRefund:
			b, ok := batches[t.BatchID]
			if !ok {
				b = &events.Batch{ShopDB: d.shopDB, StoreID: t.StoreID, ShopID: t.ShopID, BatchID: t.BatchID, Operation: t.Operation,
					TokenID: t.TokenID, FirstSeen: now}
				batches[t.BatchID] = b
				order = append(order, t.BatchID)
			}
			b.Orders = append(b.Orders, events.BatchOrder{OrderID: t.OrderID, TaskID: t.TaskID})
		}
		ids = append(ids, t.TaskID)
	}
	for _, id := range order {
		b := batches[id]
		msg, err := b.Msg(events.SweptBatchID(d.key, id, now))
		if err != nil {
			return 0, err
		}
		if _, err := d.js.PublishMsg(ctx, msg); err != nil {
			return 0, fmt.Errorf("republish batch %s: %w", id, err)
		}
		d.m.swept.WithLabelValues(prestashop.ActionCheckTicketStatus).Add(float64(len(b.Orders)))
	}
	if err := d.store.TouchTasks(ctx, ids); err != nil {
		return 0, err
	}
	return len(ids), nil
}
