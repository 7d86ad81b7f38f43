package detector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/targets"
)

// historyRow is an order_history row with what deciding needs.
type historyRow struct {
	ID      uint64
	OrderID uint32
	StateID uint32
	At      time.Time
	ShopID  uint32
	SF      bool
}

// tail polls order_history while the lease is held. Batches are pipelined:
// while JetStream acknowledges one batch's events, the next batch is read,
// its tasks saved and its events sent. The checkpoint of a batch is saved
// only once every event of that batch and of all batches before it is
// acknowledged; after any failure reading resumes from the saved checkpoint
// (saving tasks and publishing again are idempotent).
//
// The checkpoint also lives in the shop database (checkpoints.mirror), for a
// broker that loses its store and with it the KV checkpoint. The mirror is
// written for each batch after its tasks are saved and before its events
// are published, so it runs ahead of the KV checkpoint, never behind:
//   - not behind, because re-reading a row is not harmless once its update
//     went out: the sender turns the SYNC_STATUS task into a ticket check
//     (and the poller deletes it), so the re-read row creates a new task
//     and Shopping Feed gets the operation a second time. The broker's
//     dedup window that would drop the re-published event is wiped too.
//     Before a batch is published no sender has seen its events, so a
//     mirror written then never asks to re-read a row already sent.
//   - ahead is safe: every row at or below the mirror's position that maps
//     to an update has its task saved. Events not published (or published
//     into the store that was wiped) are republished from the task table:
//     a leader that restores the mirror sweeps every due task at once
//     (sweepLost), and the sweeper the rest after SWEEP_AFTER.
//
// After a wipe the KV checkpoint is gone: saving it fails (the revision the
// leader holds is not there), the reload finds nothing, and the leader steps
// down; whoever leads next restores from the mirror (initialCheckpoint).
func (d *Detector) tail(ctx context.Context, cps *checkpoints) error {
	saved, restored, err := d.initialCheckpoint(ctx, cps)
	if err != nil {
		return err
	}
	if restored {
		d.sweepLost(ctx)
	}
	d.log.Info("detector resumes", "position", saved.Position, "gaps", len(saved.Gaps))
	read := saved // the reader's position: saved, or ahead of it by the batch in flight
	var inflight *batch
	flush := func() error {
		if inflight == nil {
			return nil
		}
		b := inflight
		inflight = nil
		if err := d.commit(ctx, cps, saved, b); err != nil {
			return err
		}
		saved = b.cp
		return nil
	}
	failures := 0
	lastPeek := time.Now()
	for {
		if ctx.Err() != nil {
			return nil
		}
		b, err := d.prepare(ctx, cps, read)
		if err == nil {
			err = flush()
		} else if ferr := flush(); ferr != nil {
			err = ferr
		}
		if err == nil {
			inflight, read = b, b.cp
			if !b.full {
				err = flush()
			}
		}
		switch {
		case errors.Is(err, errCheckpointMoved):
			inflight = nil
			if saved, err = d.reload(ctx, cps); err != nil {
				return err
			}
			read = saved
			continue
		case err != nil:
			inflight, read = nil, saved
			if ctx.Err() != nil {
				return nil
			}
			failures++
			if broker.IsGone(err) {
				d.keeper.Nudge() // the broker lost a stream or bucket: declare it again
			}
			wait := min(time.Duration(1<<min(failures, 6))*100*time.Millisecond, 5*time.Second)
			d.log.Warn("detector poll failed, retrying from the checkpoint", "err", err, "position", saved.Position, "retry_in", wait)
			if !pause.For(ctx, wait) {
				return nil
			}
			continue
		}
		failures = 0
		if b.full {
			continue
		}
		if b.idle && time.Since(lastPeek) > time.Second {
			// A replay moves the checkpoint while we are idle.
			lastPeek = time.Now()
			if moved, err := d.checkpointMoved(ctx, cps); err == nil && moved {
				if saved, err = d.reload(ctx, cps); err != nil {
					return err
				}
				read = saved
				continue
			}
		}
		if !pause.For(ctx, d.cfg.PollInterval) {
			return nil
		}
	}
}

// batch is one poll's work: the checkpoint it leads to and the events
// JetStream has yet to acknowledge.
type batch struct {
	cp   Checkpoint
	full bool
	idle bool
	rows []historyRow
	evs  []pending
	futs []jetstream.PubAckFuture
}

// commit waits for a batch's acknowledgements and saves its checkpoint.
func (d *Detector) commit(ctx context.Context, cps *checkpoints, saved Checkpoint, b *batch) error {
	if err := awaitAcks(ctx, b.futs); err != nil {
		return err
	}
	for _, p := range b.evs {
		kind := "unmapped"
		if p.mapped {
			kind = "mapped"
		}
		d.m.published.WithLabelValues(kind).Inc()
	}
	if b.cp.Position != saved.Position || !sameGaps(b.cp.Gaps, saved.Gaps) {
		if err := cps.save(ctx, b.cp); err != nil {
			return err
		}
	}
	d.observe(ctx, b.cp, b.rows, b.full)
	return nil
}

func (d *Detector) checkpointMoved(ctx context.Context, cps *checkpoints) (bool, error) {
	e, err := cps.kv.Get(ctx, cps.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return true, nil // the broker lost it: reload steps down
	}
	if err != nil {
		return false, err
	}
	return e.Revision() != cps.rev, nil
}

func (d *Detector) reload(ctx context.Context, cps *checkpoints) (Checkpoint, error) {
	cp, err := cps.load(ctx)
	if errors.Is(err, errNoCheckpoint) {
		// The broker lost its store: the lease went with it. Step down;
		// the next leader restores the checkpoint from the database mirror.
		d.keeper.Nudge()
		return Checkpoint{}, errors.New("the broker lost the checkpoint: leading again from its database mirror")
	}
	if err != nil {
		return Checkpoint{}, err
	}
	if !cp.Replay && cp.By != d.instance {
		// Another detector believes it leads (it took the lease while this
		// one could not renew, or after the broker lost the lease): one of
		// the two must stop, and this one's lease is the doubtful one.
		return Checkpoint{}, fmt.Errorf("checkpoint moved by detector %s: stepping down", cp.By)
	}
	d.log.Warn("checkpoint moved by another writer, resuming from it", "position", cp.Position, "by", cp.By, "replay", cp.Replay)
	return cp, nil
}

// initialCheckpoint loads the checkpoint; with none in the broker, it
// restores the database mirror (restored is true: the broker lost its
// store), else starts at START_FROM.
func (d *Detector) initialCheckpoint(ctx context.Context, cps *checkpoints) (cp Checkpoint, restored bool, err error) {
	cp, err = cps.load(ctx)
	if err == nil {
		return cp, false, nil
	}
	if !errors.Is(err, errNoCheckpoint) {
		return Checkpoint{}, false, err
	}
	mirrored, ok, err := cps.loadMirror(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	if ok {
		cp = mirrored
		cp.Replay, cp.By, cp.At = false, d.instance, time.Now().UTC()
	} else {
		pos, err := StartPosition(ctx, d.store, d.start)
		if err != nil {
			return Checkpoint{}, false, err
		}
		cp = Checkpoint{Position: pos, By: d.instance, At: time.Now().UTC()}
		if err := d.mirror(ctx, cps, cp); err != nil {
			return Checkpoint{}, false, err
		}
	}
	if err := cps.save(ctx, cp); errors.Is(err, errCheckpointMoved) {
		cp, err = cps.load(ctx)
		return cp, false, err
	} else if err != nil {
		return Checkpoint{}, false, err
	}
	if ok {
		d.log.Warn("broker lost the detector checkpoint; resuming from its database mirror",
			"position", cp.Position, "gaps", len(cp.Gaps), "mirror", MirrorName(cps.key), "mirrored_at", mirrored.At)
		return cp, true, nil
	}
	d.log.Info("detector starts without checkpoint", "start_from", d.cfg.StartFrom, "position", cp.Position)
	return cp, false, nil
}

// mirror writes cp to the database mirror. A checkpoint with more gaps than
// the column holds keeps the previous mirror, and says so once a minute.
func (d *Detector) mirror(ctx context.Context, cps *checkpoints, cp Checkpoint) error {
	err := cps.mirror(ctx, cp)
	if errors.Is(err, errMirrorTooLarge) {
		if now := time.Now(); now.Sub(d.mirrorWarned) > time.Minute {
			d.mirrorWarned = now
			d.log.Warn("checkpoint not mirrored in the database: too many open gaps", "err", err)
		}
		return nil
	}
	return err
}

// StartPosition is the position a start means in a shop database: the
// highest id already handled, so that reading resumes just after it.
func StartPosition(ctx context.Context, store *prestashop.Store, s Start) (uint64, error) {
	db := store.DB()
	var pos uint64
	var err error
	switch s.Kind {
	case "now":
		err = db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id_order_history), 0) FROM "+store.T("order_history")).Scan(&pos)
	case "beginning":
	case "id":
		pos = s.ID - 1
	case "time":
		// order_history.date_add is the shop's wall clock: convert the
		// instant with the database's own offset from UTC.
		var offset int64
		if err = db.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())").Scan(&offset); err == nil {
			wall := s.Time.UTC().Add(time.Duration(offset) * time.Second)
			err = db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id_order_history), 0) FROM "+store.T("order_history")+" WHERE date_add < ?", wall).Scan(&pos)
		}
	default:
		return 0, fmt.Errorf("unknown start %q", s.Kind)
	}
	if err != nil {
		return 0, fmt.Errorf("find start position: %w", err)
	}
	return pos, nil
}

// prepare reads once from the reader's checkpoint cp: re-checks the gaps,
// reads new rows, saves their tasks and sends their events.
func (d *Detector) prepare(ctx context.Context, cps *checkpoints, cp Checkpoint) (*batch, error) {
	now := time.Now().UTC()
	var found []historyRow
	var err error
	if len(cp.Gaps) > 0 {
		if found, err = d.readGapRows(ctx, cp.Gaps); err != nil {
			return nil, err
		}
	}
	rows, err := d.readRows(ctx, cp.Position, d.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	full := len(rows) == d.cfg.BatchSize

	next := Checkpoint{Position: cp.Position, By: d.instance, At: now}
	// Gaps below the position: fill what appeared, close what is final.
	foundIDs := make([]uint64, len(found))
	for i, r := range found {
		foundIDs[i] = r.ID
	}
	probes := 0
	for _, g := range cp.Gaps {
		for _, piece := range splitGap(g, foundIDs) {
			closed, how, err := d.gapClosed(ctx, piece, now, &probes)
			if err != nil {
				return nil, err
			}
			if closed {
				d.m.gapsClosed.WithLabelValues(how).Add(float64(piece.size()))
				if how == "grace" {
					d.log.Warn("gap closed after grace period", "from_id", piece.Lo, "to_id", piece.Hi, "age", now.Sub(piece.Seen).Round(time.Second))
				}
				continue
			}
			next.Gaps = append(next.Gaps, piece)
		}
	}
	if n := len(found); n > 0 {
		d.m.gapsClosed.WithLabelValues("filled").Add(float64(n))
	}
	// New rows: ids skipped between them are new gaps.
	expect := cp.Position + 1
	for _, r := range rows {
		if r.ID > expect {
			next.Gaps = append(next.Gaps, Gap{Lo: expect, Hi: r.ID - 1, Seen: now})
		}
		expect = r.ID + 1
		next.Position = r.ID
	}
	all := append(found, rows...)
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	b := &batch{cp: next, full: full, rows: rows}
	b.idle = len(all) == 0 && len(cp.Gaps) == 0 && len(next.Gaps) == 0
	if b.evs, b.futs, err = d.handle(ctx, cps, all, next); err != nil {
		return nil, err
	}
	d.m.rowsRead.Add(float64(len(all)))
	return b, nil
}

// maxProbesPerPoll bounds the locking probes of one poll; other gaps wait
// for the next.
const maxProbesPerPoll = 50

// gapClosed decides whether a gap piece still missing after the re-check is
// final. With the writer check on, a locking probe tells at once whether a
// transaction still holds one of its ids; otherwise the gap waits out
// GAP_GRACE.
func (d *Detector) gapClosed(ctx context.Context, g Gap, now time.Time, probes *int) (bool, string, error) {
	age := now.Sub(g.Seen)
	if d.probe != nil && *probes < maxProbesPerPoll {
		*probes++
		res, err := d.probe.check(ctx, g.Lo, g.Hi)
		switch {
		case err != nil:
			return false, "", err
		case res == probeRolledBack:
			return true, "writers", nil
		case res == probeWriterOpen && age < 10*d.cfg.GapGrace:
			return false, "", nil // a transaction that may still commit
		case res == probeCommitted:
			return false, "", nil // the next re-check reads it
		}
	}
	if age < d.cfg.GapGrace {
		return false, "", nil
	}
	return true, "grace", nil
}

// splitGap removes the found ids (sorted) from a gap.
func splitGap(g Gap, found []uint64) []Gap {
	var out []Gap
	lo := g.Lo
	i := sort.Search(len(found), func(i int) bool { return found[i] >= g.Lo })
	for ; i < len(found) && found[i] <= g.Hi; i++ {
		if found[i] > lo {
			p := g
			p.Lo, p.Hi = lo, found[i]-1
			out = append(out, p)
		}
		lo = found[i] + 1
	}
	if lo <= g.Hi {
		p := g
		p.Lo = lo
		out = append(out, p)
	}
	return out
}

func sameGaps(a, b []Gap) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Lo != b[i].Lo || a[i].Hi != b[i].Hi {
			return false
		}
	}
	return true
}

const historyCols = `SELECT h.id_order_history, h.id_order, h.id_order_state, h.date_add, COALESCE(o.id_shop, 0), sf.id_order IS NOT NULL`

func (d *Detector) historyFrom() string {
	s := d.store
	return ` FROM ` + s.T("order_history") + ` h
	  LEFT JOIN ` + s.T("orders") + ` o ON o.id_order = h.id_order
	  LEFT JOIN ` + s.T("shoppingfeed_order") + ` sf ON sf.id_order = h.id_order`
}

func (d *Detector) readRows(ctx context.Context, after uint64, limit int) ([]historyRow, error) {
	q := historyCols + d.historyFrom() + ` WHERE h.id_order_history > ? ORDER BY h.id_order_history LIMIT ?`
	return d.query(ctx, q, after, limit)
}

func (d *Detector) readGapRows(ctx context.Context, gaps []Gap) ([]historyRow, error) {
	var out []historyRow
	for start := 0; start < len(gaps); start += 200 {
		chunk := gaps[start:min(start+200, len(gaps))]
		conds := make([]string, len(chunk))
		args := make([]any, 0, 2*len(chunk))
		for i, g := range chunk {
			conds[i] = "h.id_order_history BETWEEN ? AND ?"
			args = append(args, g.Lo, g.Hi)
		}
		rows, err := d.query(ctx, historyCols+d.historyFrom()+" WHERE "+strings.Join(conds, " OR ")+" ORDER BY h.id_order_history", args...)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (d *Detector) query(ctx context.Context, q string, args ...any) ([]historyRow, error) {
	rows, err := d.store.DB().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read order history: %w", err)
	}
	defer rows.Close()
	var out []historyRow
	for rows.Next() {
		var r historyRow
		if err := rows.Scan(&r.ID, &r.OrderID, &r.StateID, &r.At, &r.ShopID, &r.SF); err != nil {
			return nil, fmt.Errorf("read order history: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read order history: %w", err)
	}
	return out, nil
}

type pending struct {
	row       historyRow
	op        string
	mapped    bool
	notBefore time.Time
	// target is "" for Shopping Feed, targets.Webhook for the webhook.
	target string
}

// handle saves the tasks of mapped changes, mirrors next (see tail), then
// publishes every change of a Shopping Feed order of a shop that syncs; the
// caller awaits the acknowledgements.
func (d *Detector) handle(ctx context.Context, cps *checkpoints, rows []historyRow, next Checkpoint) ([]pending, []jetstream.PubAckFuture, error) {
	if len(rows) == 0 {
		return nil, nil, nil
	}
	position := next.Position
	evs := make([]pending, 0, len(rows))
	var changes, hookChanges []prestashop.TaskChange
	toSF, toHook, allOrders := d.cfg.Targets.ToShoppingFeed(), d.cfg.Targets.ToWebhook(), d.cfg.Targets.AllOrders()
	for _, r := range rows {
		if r.ShopID == 0 || !(r.SF || allOrders) {
			continue
		}
		sh, err := d.shops.Shop(ctx, r.ShopID)
		if err != nil {
			return nil, nil, err
		}
		if toSF && r.SF && sh.Syncs() {
			p := pending{row: r, notBefore: r.At, op: "none"}
			if sh.ConfigErr != nil {
				// The mapping cannot be read: keep the change as a task that
				// waits like a shipment; the sender judges it once the merchant
				// fixes the configuration.
				p.mapped, p.op, p.notBefore = true, "unknown", r.At.Add(sh.Delay)
			} else if op, ok := sh.Operation(r.StateID); ok {
				p.mapped, p.op = true, string(op)
				if op == prestashop.OpShip {
					p.notBefore = r.At.Add(sh.Delay)
				}
			}
			if p.mapped {
				changes = append(changes, prestashop.TaskChange{OrderID: r.OrderID, HistoryID: r.ID, UpdateAt: p.notBefore})
			}
			evs = append(evs, p)
		}
		// The webhook target: every mapped change of the orders it covers;
		// the conflict guard is Shopping Feed's and does not apply.
		if name, ok := sh.Hook.Names[r.StateID]; toHook && ok {
			p := pending{row: r, notBefore: r.At, op: name, mapped: true, target: targets.Webhook}
			if r.StateID == sh.Hook.Shipping {
				p.notBefore = r.At.Add(sh.Delay)
			}
			hookChanges = append(hookChanges, prestashop.TaskChange{OrderID: r.OrderID, HistoryID: r.ID, UpdateAt: p.notBefore})
			evs = append(evs, p)
		}
	}
	taskIDs := map[uint32]uint64{}
	if len(changes) > 0 {
		var err error
		if taskIDs, err = d.store.UpsertSyncTasks(ctx, changes); err != nil {
			return nil, nil, err
		}
	}
	hookIDs := map[uint32]uint64{}
	if len(hookChanges) > 0 {
		var err error
		if hookIDs, err = d.store.UpsertTasks(ctx, prestashop.ActionWebhook, hookChanges); err != nil {
			return nil, nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err() // the lease may be gone: publish nothing more
	}
	if err := d.mirror(ctx, cps, next); err != nil {
		return nil, nil, err
	}
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
			return nil, nil, fmt.Errorf("publish order %d change %d: %w", p.row.OrderID, p.row.ID, err)
		}
		futs = append(futs, f)
	}
	return evs, futs, nil
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
func (d *Detector) observe(ctx context.Context, cp Checkpoint, rows []historyRow, full bool) {
	d.m.position.Set(float64(cp.Position))
	d.m.gapsOpen.Set(float64(cp.gapIDs()))
	if !full {
		d.m.lagRows.Set(0)
		d.m.lagSeconds.Set(0)
		return
	}
	var max uint64
	if err := d.store.DB().QueryRowContext(ctx, "SELECT COALESCE(MAX(id_order_history), 0) FROM "+d.store.T("order_history")).Scan(&max); err == nil && max >= cp.Position {
		d.m.lagRows.Set(float64(max - cp.Position))
	}
	if now, err := d.store.Now(ctx); err == nil && len(rows) > 0 {
		d.m.lagSeconds.Set(max0(now.Sub(rows[len(rows)-1].At).Seconds()))
	}
}

func max0(f float64) float64 {
	if f < 0 {
		return 0
	}
	return f
}
