package cli

import (
	"context"
	"database/sql"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// openWithRetry waits up to a minute for a database that is still starting
// (compose starts the seed as soon as MySQL's container runs).
func openWithRetry(ctx context.Context, cfg prestashop.Config) (*sql.DB, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		db, err := prestashop.Open(ctx, cfg)
		if err == nil || time.Now().After(deadline) {
			return db, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
