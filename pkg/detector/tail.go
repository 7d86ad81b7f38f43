package detector

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/prestashop"
)

// The detector's files, by concern: tail.go the checkpoint protocol (the
// poll loop, the pipelined batches, the KV checkpoint and its database
// mirror); gaps.go the ids skipped below the position; route.go what each
// row becomes (a pure function); publish.go saving tasks and publishing
// events.

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
	if saved, err = d.ensureSlips(ctx, cps, saved, Checkpoint{}); err != nil {
		return err
	}
	d.log.Info("detector resumes", "position", saved.Position, "gaps", len(saved.Gaps), "slip_position", saved.Slips.Position)
	d.leading.Store(true) // reset by leadWhileHeld when lead returns
	read := saved         // the reader's position: saved, or ahead of it by the batch in flight
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
			prev := saved
			if saved, err = d.reload(ctx, cps); err != nil {
				return err
			}
			if saved, err = d.ensureSlips(ctx, cps, saved, prev); err != nil {
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
				prev := saved
				if saved, err = d.reload(ctx, cps); err != nil {
					return err
				}
				if saved, err = d.ensureSlips(ctx, cps, saved, prev); err != nil {
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
	rows []prestashop.HistoryRow
	evs  []routed
	// slips are the order_slip rows read, and slipEvs what they became.
	slips   []prestashop.SlipRow
	slipEvs []routedSlip
	futs    []jetstream.PubAckFuture
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
	d.m.published.WithLabelValues("slip").Add(float64(len(b.slipEvs)))
	if b.cp.Position != saved.Position || !sameGaps(b.cp.Gaps, saved.Gaps) || !sameSlips(b.cp.Slips, saved.Slips) {
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
	switch s.Kind {
	case "now":
		return store.MaxHistoryID(ctx)
	case "beginning":
		return 0, nil
	case "id":
		return s.ID - 1, nil
	case "time":
		return store.MaxHistoryIDBefore(ctx, s.Time)
	}
	return 0, fmt.Errorf("unknown start %q", s.Kind)
}

// prepare reads once from the reader's checkpoint cp: re-checks the gaps,
// reads new rows, saves their tasks and sends their events.
func (d *Detector) prepare(ctx context.Context, cps *checkpoints, cp Checkpoint) (*batch, error) {
	now := time.Now().UTC()
	var found []prestashop.HistoryRow
	var err error
	if len(cp.Gaps) > 0 {
		if found, err = d.store.HistoryIn(ctx, ranges(cp.Gaps)); err != nil {
			return nil, err
		}
	}
	rows, err := d.store.HistoryAfter(ctx, cp.Position, d.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	full := len(rows) == d.cfg.BatchSize
	next := Checkpoint{Position: cp.Position, By: d.instance, At: now}
	if next.Gaps, err = d.gapsLeft(ctx, cp.Gaps, found, now); err != nil {
		return nil, err
	}
	next.Position, next.Gaps = advance(cp.Position, next.Gaps, rows, now)
	all := append(found, rows...)
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	slips, slipsFull, err := d.readSlips(ctx, &next, cp.Slips, now)
	if err != nil {
		return nil, err
	}
	b := &batch{cp: next, full: full || slipsFull, rows: rows, slips: slips}
	b.idle = len(all) == 0 && len(cp.Gaps) == 0 && len(next.Gaps) == 0 &&
		len(slips) == 0 && (cp.Slips == nil || len(cp.Slips.Gaps) == 0) && len(next.Slips.Gaps) == 0
	if b.evs, b.slipEvs, b.futs, err = d.dispatch(ctx, cps, all, slips, next); err != nil {
		return nil, err
	}
	d.m.rowsRead.Add(float64(len(all)))
	return b, nil
}
