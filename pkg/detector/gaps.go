package detector

import (
	"context"
	"sort"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// A gap is an id range below the position that was missing when a higher
// id was read: a transaction that has not committed yet, or one that
// rolled back. Each poll re-reads the open gaps; what appeared is handled
// like any new row, and a gap is closed once it is known to stay empty.

// gapsLeft re-judges the open gaps after found (the rows read in them):
// what appeared fills its piece, a piece known to stay empty is closed, the
// rest stays open.
func (d *Detector) gapsLeft(ctx context.Context, gaps []Gap, found []prestashop.HistoryRow, now time.Time) ([]Gap, error) {
	foundIDs := make([]uint64, len(found))
	for i, r := range found {
		foundIDs[i] = r.ID
	}
	var left []Gap
	probes := 0
	for _, g := range gaps {
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
			left = append(left, piece)
		}
	}
	if n := len(found); n > 0 {
		d.m.gapsClosed.WithLabelValues("filled").Add(float64(n))
	}
	return left, nil
}

// advance moves the position over new rows (in id order): ids skipped
// between them are new gaps, seen now.
func advance(position uint64, gaps []Gap, rows []prestashop.HistoryRow, now time.Time) (uint64, []Gap) {
	ids := make([]uint64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return advanceIDs(position, gaps, ids, now)
}

// advanceIDs is advance over ids (in order).
func advanceIDs(position uint64, gaps []Gap, ids []uint64, now time.Time) (uint64, []Gap) {
	expect := position + 1
	for _, id := range ids {
		if id > expect {
			gaps = append(gaps, Gap{Lo: expect, Hi: id - 1, Seen: now})
		}
		expect = id + 1
		position = id
	}
	return position, gaps
}

// ranges are the gaps' id ranges.
func ranges(gaps []Gap) []prestashop.IDRange {
	out := make([]prestashop.IDRange, len(gaps))
	for i, g := range gaps {
		out[i] = prestashop.IDRange{Lo: g.Lo, Hi: g.Hi}
	}
	return out
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
