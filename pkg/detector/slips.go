package detector

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
	"github.com/sfsync/sfsync/pkg/targets"
)

// Order slips are tailed like order_history, in the same polls and under
// the same lease: by id, from the checkpoint's SlipCursor, gap-aware (see
// readSlips). A new slip of a Shopping Feed order whose shop
// allows partial refunds (SHOPPINGFEED_ALLOW_PARTIAL_REFUND, as the
// module's hook checks) is saved as a PARTIAL_REFUND task, then published
// once, with a dedup id of its own.

// ensureSlips gives cp a slip cursor when it has none, and saves it at
// once (mirror, then broker), so that a restart resumes the slips from
// there: prev's cursor (a checkpoint moved by a replay, which knows nothing
// of slips, keeps the slips' place), else where START_FROM puts it.
func (d *Detector) ensureSlips(ctx context.Context, cps *checkpoints, cp, prev Checkpoint) (Checkpoint, error) {
	if cp.Slips != nil {
		return cp, nil
	}
	if prev.Slips != nil {
		s := *prev.Slips
		cp.Slips = &s
	} else {
		pos, err := SlipStart(ctx, d.store, d.start)
		if err != nil {
			return cp, err
		}
		cp.Slips = &SlipCursor{Position: pos}
		d.log.Info("detector starts tailing order slips", "start_from", d.cfg.StartFrom, "slip_position", pos)
	}
	if err := d.mirror(ctx, cps, cp); err != nil {
		return cp, err
	}
	if err := cps.save(ctx, cp); err != nil {
		return cp, err
	}
	return cp, nil
}

// SlipStart is the slip position a start means: now and id:N (an
// order_history id, which says nothing of slips) start after the last
// slip, beginning from the first, time:T after the last slip made before T.
func SlipStart(ctx context.Context, store *prestashop.Store, s Start) (uint64, error) {
	switch s.Kind {
	case "now", "id":
		return store.MaxSlipID(ctx)
	case "beginning":
		return 0, nil
	case "time":
		return store.MaxSlipIDBefore(ctx, s.Time)
	}
	return 0, fmt.Errorf("unknown start %q", s.Kind)
}

// readSlips reads the slips after cur in id order, and stops at the first
// id missing between them (a slip transaction not committed yet): the slips
// after a hole wait until it fills, or until GAP_GRACE says it never will
// (a rolled-back slip). So slips are taken strictly in id order, and a
// slip is never found below one already sent: the task table's per-order
// high-water mark (sfsync_task_done) stays exact. It sets next's slip
// cursor; full is true when a whole batch was taken.
func (d *Detector) readSlips(ctx context.Context, next *Checkpoint, cur *SlipCursor, now time.Time) ([]prestashop.SlipRow, bool, error) {
	if cur == nil {
		cur = &SlipCursor{} // (tail always sets one first)
	}
	rows, err := d.store.SlipsAfter(ctx, cur.Position, d.cfg.BatchSize)
	if err != nil {
		return nil, false, err
	}
	expect := cur.Position + 1
	var hole []Gap
	taken := rows
	for i, r := range rows {
		if r.ID > expect {
			seen := now
			if len(cur.Gaps) > 0 && cur.Gaps[0].Lo == expect {
				seen = cur.Gaps[0].Seen
			}
			if now.Sub(seen) < d.cfg.GapGrace {
				hole, taken = []Gap{{Lo: expect, Hi: r.ID - 1, Seen: seen}}, rows[:i]
				break
			}
			d.log.Warn("order slip ids skipped after grace period: no slip committed there", "from_id", expect, "to_id", r.ID-1)
		}
		expect = r.ID + 1
	}
	next.Slips = &SlipCursor{Position: expect - 1, Gaps: hole}
	return taken, len(rows) == d.cfg.BatchSize && hole == nil, nil
}

// routedSlip is an order slip that becomes a partial refund.
type routedSlip struct {
	row prestashop.SlipRow
}

// slipConcerned reports whether a slip may become a partial refund, and so
// needs its shop looked up.
func slipConcerned(r prestashop.SlipRow, t targets.Config) bool {
	return r.Bad == "" && r.ShopID != 0 && r.SF && t.ToShoppingFeed()
}

// routeSlips keeps the slips that become partial refunds: Shopping Feed
// orders of shops that sync and allow partial refunds. A shop whose
// configuration cannot be read keeps its slips as tasks: the sender
// judges them once the merchant fixes it.
func routeSlips(rows []prestashop.SlipRow, shops map[uint32]*shoppolicy.Shop, t targets.Config) []routedSlip {
	var out []routedSlip
	for _, r := range rows {
		if !slipConcerned(r, t) {
			continue
		}
		sh := shops[r.ShopID]
		if sh.Syncs() && (sh.ConfigErr != nil || sh.Settings.PartialRefunds) {
			out = append(out, routedSlip{row: r})
		}
	}
	return out
}

// skipBadSlips logs the slips that cannot be used; they count as read.
func (d *Detector) skipBadSlips(rows []prestashop.SlipRow) {
	for _, r := range rows {
		if r.Bad != "" {
			d.m.badRows.Inc()
			d.log.Error("order_slip row skipped: it cannot be used", "slip_id", r.ID, "err", r.Bad)
		}
	}
}

// publishSlips sends one event per partial refund, with its task id.
func (d *Detector) publishSlips(evs []routedSlip, position uint64, taskIDs map[uint32]uint64) ([]jetstream.PubAckFuture, error) {
	futs := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, p := range evs {
		ev := events.Change{
			ShopDB: d.shopDB, ShopID: p.row.ShopID, OrderID: p.row.OrderID, HistoryID: p.row.ID,
			ChangedAt: p.row.At, NotBefore: p.row.At, Position: position, Source: events.SourceDetector,
			TaskID: taskIDs[p.row.OrderID], Action: prestashop.ActionPartialRefund,
		}
		f, err := d.js.PublishMsgAsync(ev.Msg(string(prestashop.OpRefund), events.SlipID(d.key, p.row.ID)))
		if err != nil {
			return nil, fmt.Errorf("publish order %d slip %d: %w", p.row.OrderID, p.row.ID, err)
		}
		futs = append(futs, f)
	}
	return futs, nil
}
