package detector

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/targets"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
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
	slot := strconv.FormatInt(time.Now().Unix()/60, 10)
	batches := map[string]*sfsyncv1.TicketCheck{}
	var order []string
	var ids []uint64
	for _, t := range stuck {
		switch t.Action {
		case prestashop.ActionSyncStatus, prestashop.ActionWebhook:
			ev := &sfsyncv1.OrderStatusChanged{ShopId: t.ShopID, OrderId: t.OrderID, TaskId: t.TaskID, Source: "sweeper", ShopDb: d.shopDB}
			if t.Action == prestashop.ActionWebhook {
				ev.Target = targets.Webhook
			}
			msg := d.eventMsg(ev, "none", d.key+".sweep."+strconv.FormatUint(t.TaskID, 10)+"."+slot)
			if _, err := d.js.PublishMsg(ctx, msg); err != nil {
				return 0, fmt.Errorf("republish task %d: %w", t.TaskID, err)
			}
			d.m.swept.WithLabelValues(t.Action).Inc()
		case prestashop.ActionCheckTicketStatus:
			tc, ok := batches[t.BatchID]
			if !ok {
				tc = &sfsyncv1.TicketCheck{StoreId: t.StoreID, ShopId: t.ShopID, BatchId: t.BatchID, Operation: t.Operation,
					TokenId: t.TokenID, FirstSeen: timestamppb.Now()}
				batches[t.BatchID] = tc
				order = append(order, t.BatchID)
			}
			tc.Orders = append(tc.Orders, &sfsyncv1.TicketOrder{OrderId: t.OrderID, TaskId: t.TaskID})
		}
		ids = append(ids, t.TaskID)
	}
	for _, b := range order {
		tc := batches[b]
		body, err := protojson.Marshal(tc)
		if err != nil {
			return 0, err
		}
		msg := nats.NewMsg(broker.TicketCheckSubject(tc.StoreId))
		msg.Data = body
		msg.Header.Set(jetstream.MsgIDHeader, d.key+".sweepbatch."+b+"."+slot)
		msg.Header.Set(broker.HeaderStore, tc.StoreId)
		msg.Header.Set(broker.HeaderBatch, tc.BatchId)
		msg.Header.Set(broker.HeaderShop, strconv.FormatUint(uint64(tc.ShopId), 10))
		msg.Header.Set(broker.HeaderOperation, tc.Operation)
		if _, err := d.js.PublishMsg(ctx, msg); err != nil {
			return 0, fmt.Errorf("republish batch %s: %w", b, err)
		}
		d.m.swept.WithLabelValues(prestashop.ActionCheckTicketStatus).Add(float64(len(tc.Orders)))
	}
	if err := d.store.TouchTasks(ctx, ids); err != nil {
		return 0, err
	}
	return len(ids), nil
}
