package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// The writer check. A gap is an id range below the position that was
// missing when a higher id was read. Either a transaction still holds those
// ids (it inserted the rows and has not committed), or it rolled back and
// they will never appear. A locking read of the range at READ COMMITTED
// tells which, live: InnoDB makes it wait for (here: fail at once on) a row
// inserted by a transaction still open, returns committed rows, and finds
// nothing where the insert was rolled back.
//
// information_schema.INNODB_TRX cannot answer this safely: InnoDB serves it
// from a cache refreshed only when nobody read it for 100 ms, so a detector
// polling more often than that reads the same stale list forever (seen on
// MariaDB 10.11), and may miss a writer that started after it was filled.

type probeResult int

const (
	probeUnavailable probeResult = iota
	probeRolledBack
	probeWriterOpen
	probeCommitted
)

type writerProbe struct {
	store *prestashop.Store
	log   *slog.Logger

	mu       sync.Mutex
	nowait   bool // NOWAIT is understood (MariaDB 10.3+, MySQL 8.0+)
	disabled bool // the grants do not allow the locking read
}

// MySQL and MariaDB error numbers the probe interprets.
const (
	errLockWaitTimeout = 1205 // lock wait timeout; MariaDB's NOWAIT conflict
	errLockNowait      = 3572 // MySQL 8's NOWAIT conflict
	errParse           = 1064
	errTableAccess     = 1142
	errSpecificAccess  = 1227
)

func (p *writerProbe) check(ctx context.Context, lo, hi uint64) (probeResult, error) {
	p.mu.Lock()
	disabled, nowait := p.disabled, p.nowait
	p.mu.Unlock()
	if disabled {
		return probeUnavailable, nil
	}
	res, err := p.run(ctx, lo, hi, nowait)
	var me *mysql.MySQLError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &me) && (me.Number == errLockWaitTimeout || me.Number == errLockNowait):
		return probeWriterOpen, nil
	case errors.As(err, &me) && me.Number == errParse && nowait:
		// MySQL 5.7: no NOWAIT; wait at most innodb_lock_wait_timeout = 1 s.
		p.mu.Lock()
		p.nowait = false
		p.mu.Unlock()
		return p.check(ctx, lo, hi)
	case errors.As(err, &me) && (me.Number == errTableAccess || me.Number == errSpecificAccess):
		p.mu.Lock()
		p.disabled = true
		p.mu.Unlock()
		p.log.Warn("gap writer check disabled: the locking read of order_history is not granted (GRANT UPDATE or LOCK TABLES); gaps wait out GAP_GRACE", "err", err)
		return probeUnavailable, nil
	}
	return probeUnavailable, fmt.Errorf("probe gap %d-%d: %w", lo, hi, err)
}

func (p *writerProbe) run(ctx context.Context, lo, hi uint64, nowait bool) (probeResult, error) {
	n, err := p.store.LockHistoryRange(ctx, lo, hi, nowait)
	switch {
	case err != nil:
		return probeUnavailable, err
	case n > 0:
		return probeCommitted, nil
	}
	return probeRolledBack, nil
}
