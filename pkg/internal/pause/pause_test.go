package pause

import (
	"context"
	"testing"
	"time"
)

func TestFor(t *testing.T) {
	if !For(context.Background(), time.Millisecond) {
		t.Fatal("a wait that ran its course reported false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	began := time.Now()
	if For(ctx, time.Hour) {
		t.Fatal("a wait cut short by its context reported true")
	}
	if time.Since(began) > time.Second {
		t.Fatal("an ended context did not cut the wait short")
	}
}
