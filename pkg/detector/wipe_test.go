package detector_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestBrokerWipeResumesFromTheDatabaseMirror: nats-server (Debian's 2.9)
// restarts with an empty store. The detector must not restart from
// START_FROM=now, which would skip the changes committed since its last
// checkpoint; it resumes from the checkpoint's database mirror, reads
// every row after it once, and re-reads none before it.
func TestBrokerWipeResumesFromTheDatabaseMirror(t *testing.T) {
	e := newEnv(t, testenv.NATSBinary)
	ctx := context.Background()
	var logs testenv.SyncBuffer
	r := e.startLogged(testConfig(), "a", slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	e.waitLeader(r)
	o1, o2 := e.order(), e.order()
	before := e.change(o1, shopfixture.StateCanceled)
	e.eventually(10*time.Second, "published before the wipe", func() bool { return e.eventsFor(before) == 1 })
	e.eventually(10*time.Second, "checkpoint past it", func() bool {
		kv, err := e.js.KeyValue(ctx, broker.CheckpointBucket)
		if err != nil {
			return false
		}
		cp, ok, err := detector.ReadCheckpoint(ctx, kv, detector.Key(e.db.Name, "ps_"))
		return err == nil && ok && cp.Position >= before
	})

	e.nats.Restart(true)
	// Committed while the broker has nothing: no stream, no lease, no
	// checkpoint. The first may still be read by the leader before it
	// steps down; the second is read only by the next leader.
	during := []uint64{e.change(o2, shopfixture.StateShipped)}
	e.eventually(20*time.Second, "leader stepped down", func() bool { return !r.d.Leading() })
	during = append(during, e.change(o1, shopfixture.StateRefunded))
	// What the keeper does.
	e.eventually(20*time.Second, "declared again", func() bool {
		return broker.Declare(ctx, e.js, broker.Settings{LeaseTTL: leaseTTL}) == nil
	})
	e.waitLeader(r)
	after := e.change(o2, shopfixture.StateCanceled)

	// Every change since the wipe reaches the new stream: read by the tail,
	// or, when its task was saved before the broker came back, republished
	// from the task table.
	published := func(h uint64, order uint32) bool {
		for _, ev := range e.events() {
			if ev.OrderHistoryId == h && ev.Source == "detector" {
				return true
			}
			if ev.Source == "sweeper" && ev.OrderId == order {
				for _, tk := range e.tasks(order) {
					if tk.id == ev.TaskId && tk.last >= h {
						return true
					}
				}
			}
		}
		return false
	}
	e.eventually(30*time.Second, "changes since the wipe published", func() bool {
		return published(during[0], o2) && published(during[1], o1) && e.eventsFor(after) == 1
	})
	for _, tc := range []struct {
		order uint32
		last  uint64
	}{{o1, during[1]}, {o2, after}} {
		ts := e.tasks(tc.order)
		if len(ts) != 1 || ts[0].last != tc.last {
			t.Errorf("order %d: tasks %+v, want one at history %d", tc.order, ts, tc.last)
		}
	}
	// Nothing before the mirror's position was read again.
	if n := e.eventsFor(before); n != 0 {
		t.Errorf("change %d from before the wipe published again %d times", before, n)
	}
	if !strings.Contains(logs.String(), "resuming from its database mirror") {
		t.Errorf("no warning that the checkpoint was restored; log:\n%s", logs.String())
	}
}
