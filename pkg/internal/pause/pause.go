// Package pause waits in a way a context can cut short: the one helper the
// workers' retry loops and the chaos harness share.
package pause

import (
	"context"
	"time"
)

// For waits d and reports true, or false as soon as ctx ends.
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
