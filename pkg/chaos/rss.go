package chaos

import (
	"context"
	"errors"
)

// MeasureRSS is written next.
func MeasureRSS(ctx context.Context, o Options, updates int) error {
	return errors.New("not yet")
}
