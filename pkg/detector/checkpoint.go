package detector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// Gap is a range of order_history ids below the position that were not
// there when a higher id was read: a transaction not yet committed, or one
// rolled back.
type Gap struct {
	Lo uint64 `json:"lo"`
	Hi uint64 `json:"hi"`
	// Seen is when the gap was found (this process's clock, UTC).
	Seen time.Time `json:"seen"`
}

func (g Gap) size() uint64 { return g.Hi - g.Lo + 1 }

// Checkpoint is the detector's durable position.
type Checkpoint struct {
	// Position: every id ≤ Position was handled or is in Gaps.
	Position uint64    `json:"position"`
	Gaps     []Gap     `json:"gaps,omitempty"`
	By       string    `json:"by,omitempty"`
	At       time.Time `json:"at"`
	// Replay, when set by `sfsync replay`, asks the leader to restart from
	// Position (history rows published again are deduplicated by the
	// broker inside its window and by the task table beyond).
	Replay bool `json:"replay,omitempty"`
	// Slips is the order_slip tail's place (see slips.go); nil in a
	// checkpoint written before slips were tailed.
	Slips *SlipCursor `json:"slips,omitempty"`
}

// SlipCursor is the order_slip tail's position and open gaps, kept in the
// checkpoint beside order_history's and moved with it: one
// compare-and-set saves both.
type SlipCursor struct {
	Position uint64 `json:"position"`
	Gaps     []Gap  `json:"gaps,omitempty"`
}

func sameSlips(a, b *SlipCursor) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Position == b.Position && sameGaps(a.Gaps, b.Gaps)
}

func (c Checkpoint) gapIDs() uint64 {
	var n uint64
	for _, g := range c.Gaps {
		n += g.size()
	}
	return n
}

// checkpoints stores checkpoints in a KV bucket, moved only by
// compare-and-set on the revision last read or written, and mirrors them in
// the shop database's sfsync_meta (MirrorName), which a broker that loses
// its store does not lose.
type checkpoints struct {
	kv    jetstream.KeyValue
	store *prestashop.Store
	key   string
	rev   uint64
}

// MirrorName is the sfsync_meta row that mirrors the checkpoint of key: the
// position the detector resumes from when the broker lost the KV one.
func MirrorName(key string) string {
	name := "detector_checkpoint." + key
	if len(name) > 64 { // the column's width: keep the start, make the end unique
		sum := sha256.Sum256([]byte(key))
		name = name[:47] + "." + hex.EncodeToString(sum[:8])
	}
	return name
}

// errMirrorTooLarge: the checkpoint's gaps do not fit the sfsync_meta
// column. The mirror keeps its previous value (a restore from it re-reads
// rows), which is logged.
var errMirrorTooLarge = errors.New("checkpoint too large for its database mirror")

// mirror writes cp to the database mirror.
func (c *checkpoints) mirror(ctx context.Context, cp Checkpoint) error {
	return writeMirror(ctx, c.store, c.key, cp)
}

func writeMirror(ctx context.Context, store *prestashop.Store, key string, cp Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if len(b) > prestashop.MetaValueMax {
		return fmt.Errorf("%w: %d bytes, %d gaps", errMirrorTooLarge, len(b), len(cp.Gaps))
	}
	return store.SetMeta(ctx, MirrorName(key), string(b))
}

// loadMirror reads the database mirror; ok is false when there is none.
func (c *checkpoints) loadMirror(ctx context.Context) (cp Checkpoint, ok bool, err error) {
	v, ok, err := c.store.Meta(ctx, MirrorName(c.key))
	if err != nil || !ok {
		return Checkpoint{}, false, err
	}
	if err := json.Unmarshal([]byte(v), &cp); err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint mirror %s is not valid JSON: %w", MirrorName(c.key), err)
	}
	return cp, true, nil
}

var errNoCheckpoint = errors.New("no checkpoint")

// errCheckpointMoved means someone else wrote the checkpoint (a replay, or
// a detector that believes it leads).
var errCheckpointMoved = errors.New("checkpoint moved by another writer")

func (c *checkpoints) load(ctx context.Context) (Checkpoint, error) {
	e, err := c.kv.Get(ctx, c.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Checkpoint{}, errNoCheckpoint
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("read checkpoint %s: %w", c.key, err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s is not valid JSON: %w", c.key, err)
	}
	c.rev = e.Revision()
	return cp, nil
}

func (c *checkpoints) save(ctx context.Context, cp Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	var rev uint64
	if c.rev == 0 {
		rev, err = c.kv.Create(ctx, c.key, b)
	} else {
		rev, err = c.kv.Update(ctx, c.key, b, c.rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errCheckpointMoved
	}
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", c.key, err)
	}
	c.rev = rev
	return nil
}

// SetCheckpoint overwrites the checkpoint whatever its revision, for the
// operator's replay: the running leader sees the change and resumes there.
// The database mirror is written first, so that a broker that loses its
// store after the replay still resumes from the replayed position (and if
// the KV write fails, the leader's next batch writes the mirror again).
func SetCheckpoint(ctx context.Context, kv jetstream.KeyValue, store *prestashop.Store, key string, cp Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := writeMirror(ctx, store, key, cp); err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", key, err)
	}
	return nil
}

// ReadCheckpoint returns the stored checkpoint; ok is false when none.
func ReadCheckpoint(ctx context.Context, kv jetstream.KeyValue, key string) (cp Checkpoint, ok bool, err error) {
	c := &checkpoints{kv: kv, key: key}
	cp, err = c.load(ctx)
	if errors.Is(err, errNoCheckpoint) {
		return Checkpoint{}, false, nil
	}
	return cp, err == nil, err
}
