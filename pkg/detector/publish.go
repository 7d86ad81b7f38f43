package detector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
	"github.com/sfsync/sfsync/pkg/targets"
)

// dispatch routes rows and slips, saves the tasks of mapped changes and
// slips, mirrors next (see tail), then publishes the events; the caller
// awaits the acknowledgements.
func (d *Detector) dispatch(ctx context.Context, cps *checkpoints, rows []prestashop.HistoryRow, slips []prestashop.SlipRow, next Checkpoint) ([]routed, []routedSlip, []jetstream.PubAckFuture, error) {
	if len(rows) == 0 && len(slips) == 0 {
		return nil, nil, nil, nil
	}
	if err := d.skipBad(ctx, rows); err != nil {
		return nil, nil, nil, err
	}
	d.skipBadSlips(slips)
	shops := map[uint32]*shoppolicy.Shop{}
	lookup := func(id uint32) error {
		if _, ok := shops[id]; ok {
			return nil
		}
		sh, err := d.shops.Shop(ctx, id)
		if err != nil {
			return err
		}
		shops[id] = sh
		return nil
	}
	for _, r := range rows {
		if concerned(r, d.cfg.Targets) {
			if err := lookup(r.ShopID); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for _, sl := range slips {
		if slipConcerned(sl, d.cfg.Targets) {
			if err := lookup(sl.ShopID); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	evs := route(rows, shops, d.cfg.Targets)
	slipEvs := routeSlips(slips, shops, d.cfg.Targets)
	var changes, hookChanges []prestashop.TaskChange
	for _, p := range evs {
		c := prestashop.TaskChange{OrderID: p.row.OrderID, HistoryID: p.row.ID, UpdateAt: p.notBefore}
		switch {
		case p.target == targets.Webhook:
			hookChanges = append(hookChanges, c)
		case p.mapped:
			changes = append(changes, c)
		}
	}
	taskIDs := map[uint32]uint64{}
	if len(changes) > 0 {
		var err error
		if taskIDs, err = d.store.UpsertSyncTasks(ctx, changes); err != nil {
			return nil, nil, nil, err
		}
	}
	hookIDs := map[uint32]uint64{}
	if len(hookChanges) > 0 {
		var err error
		if hookIDs, err = d.store.UpsertTasks(ctx, prestashop.ActionWebhook, hookChanges); err != nil {
			return nil, nil, nil, err
		}
	}
	refundIDs := map[uint32]uint64{}
	if len(slipEvs) > 0 {
		refunds := make([]prestashop.TaskChange, len(slipEvs))
		for i, p := range slipEvs {
			refunds[i] = prestashop.TaskChange{OrderID: p.row.OrderID, HistoryID: p.row.ID, UpdateAt: p.row.At}
		}
		var err error
		if refundIDs, err = d.store.UpsertTasks(ctx, prestashop.ActionPartialRefund, refunds); err != nil {
			return nil, nil, nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, nil, nil, ctx.Err() // the lease may be gone: publish nothing more
	}
	if err := d.mirror(ctx, cps, next); err != nil {
		return nil, nil, nil, err
	}
	futs, err := d.publish(evs, next.Position, taskIDs, hookIDs)
	if err != nil {
		return nil, nil, nil, err
	}
	more, err := d.publishSlips(slipEvs, next.Position, refundIDs)
	return evs, slipEvs, append(futs, more...), err
}

// skipBad reports the rows that cannot be used: an error line naming each
// one's id, and the record `sfsync status` shows. route passes them over,
// and the position moves past them like any row read, so that one bad row
// never stops the rows after it.
func (d *Detector) skipBad(ctx context.Context, rows []prestashop.HistoryRow) error {
	var bad []prestashop.BadHistoryRow
	now := time.Now().UTC()
	for _, r := range rows {
		if r.Bad != "" {
			bad = append(bad, prestashop.BadHistoryRow{ID: r.ID, Reason: r.Bad, At: now})
		}
	}
	if len(bad) == 0 {
		return nil
	}
	if err := d.store.RecordBadHistory(ctx, bad); err != nil {
		return err
	}
	for _, b := range bad {
		d.m.badRows.Inc()
		d.log.Error("order_history row skipped: it cannot be used", "history_id", b.ID, "err", b.Reason)
	}
	return nil
}

// publish sends one event per routed row, each with its task id and the
// detector's position, without waiting for the acknowledgements.
func (d *Detector) publish(evs []routed, position uint64, taskIDs, hookIDs map[uint32]uint64) ([]jetstream.PubAckFuture, error) {
	futs := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, p := range evs {
		ev := events.Change{
			ShopDB: d.shopDB, ShopID: p.row.ShopID, OrderID: p.row.OrderID, HistoryID: p.row.ID, StateID: p.row.StateID,
			ChangedAt: p.row.At, NotBefore: p.notBefore, Position: position, Source: events.SourceDetector, Target: p.target,
		}
		switch {
		case p.target == targets.Webhook:
			ev.TaskID = hookIDs[p.row.OrderID]
		case p.mapped:
			ev.TaskID = taskIDs[p.row.OrderID]
		}
		f, err := d.js.PublishMsgAsync(ev.Msg(p.op, events.DetectedID(d.key, p.row.ID, p.target)))
		if err != nil {
			return nil, fmt.Errorf("publish order %d change %d: %w", p.row.OrderID, p.row.ID, err)
		}
		futs = append(futs, f)
	}
	return futs, nil
}

func awaitAcks(ctx context.Context, futs []jetstream.PubAckFuture) error {
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish event: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return errors.New("publish event: no acknowledgement from JetStream within 15s")
		}
	}
	return nil
}

// observe updates the lag metrics after a poll.
func (d *Detector) observe(ctx context.Context, cp Checkpoint, rows []prestashop.HistoryRow, full bool) {
	d.m.position.Set(float64(cp.Position))
	d.m.gapsOpen.Set(float64(cp.gapIDs()))
	if !full {
		d.m.lagRows.Set(0)
		d.m.lagSeconds.Set(0)
		return
	}
	if last, err := d.store.MaxHistoryID(ctx); err == nil && last >= cp.Position {
		d.m.lagRows.Set(float64(last - cp.Position))
	}
	for i := len(rows) - 1; i >= 0; i-- {
		if rows[i].Bad != "" {
			continue // no date to go by
		}
		if now, err := d.store.Now(ctx); err == nil {
			d.m.lagSeconds.Set(max0(now.Sub(rows[i].At).Seconds()))
		}
		break
	}
}

func max0(f float64) float64 {
	if f < 0 {
		return 0
	}
	return f
}
