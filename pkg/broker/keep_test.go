package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestKeeperDeclaresWhatAWipedBrokerLost: Debian's nats-server (2.9)
// restarts with its store deleted; three keepers, as three worker
// processes would run, declare everything again, and each recovery is
// logged once.
func TestKeeperDeclaresWhatAWipedBrokerLost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := testenv.NATSBinary(t)
	_, js := b.Connect(t)
	s := broker.Settings{LeaseTTL: 2 * time.Second}
	if err := broker.Declare(ctx, js, s); err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const keepers = 3
	kctx, stopKeepers := context.WithCancel(ctx)
	done := make(chan struct{})
	for range keepers {
		_, kjs := b.Connect(t)
		k := broker.NewKeeper(kjs, s, log)
		k.Interval = 300 * time.Millisecond
		go func() { _ = k.Run(kctx); done <- struct{}{} }()
	}
	stop := func() {
		stopKeepers()
		for range keepers {
			<-done
		}
	}
	defer func() { stop() }()
	if missing, err := broker.Missing(ctx, js); err != nil || len(missing) != 0 {
		t.Fatalf("before the wipe: missing %v, %v", missing, err)
	}
	time.Sleep(time.Second) // a few checks that find nothing to do
	if strings.Contains(logs.String(), "declared again") {
		t.Fatalf("declared with nothing lost:\n%s", logs.String())
	}

	b.Restart(true)
	testenv.Eventually(t, 30*time.Second, "everything declared again", func() bool {
		missing, err := broker.Missing(ctx, js)
		return err == nil && len(missing) == 0
	})
	kv, err := js.KeyValue(ctx, broker.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.TTL() != s.LeaseTTL {
		t.Fatalf("lease bucket declared again without its TTL: %v %v", st, err)
	}
	testenv.Eventually(t, 10*time.Second, "recovery logged", func() bool {
		return strings.Contains(logs.String(), "broker lost its streams; declared again")
	})
	time.Sleep(time.Second)
	if n := strings.Count(logs.String(), "declared again"); n > keepers {
		t.Fatalf("recovery logged %d times by %d keepers:\n%s", n, keepers, logs.String())
	}
	stop()
	stop = func() {}

	// A nudge declares at once, without waiting for the next check.
	_, njs := b.Connect(t)
	nudged := broker.NewKeeper(njs, s, log)
	nudged.Interval = time.Hour
	nudgedDone := make(chan struct{})
	go func() { _ = nudged.Run(ctx); close(nudgedDone) }()
	defer func() { cancel(); <-nudgedDone }()
	if err := js.DeleteStream(ctx, broker.TicketsStream); err != nil {
		t.Fatal(err)
	}
	nudged.Nudge()
	testenv.Eventually(t, 10*time.Second, "deleted stream declared again", func() bool {
		missing, err := broker.Missing(ctx, js)
		return err == nil && len(missing) == 0
	})
}

func TestIsGone(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"nil":             {nil, false},
		"other":           {errors.New("timeout"), false},
		"stream":          {fmt.Errorf("publish: %w", jetstream.ErrStreamNotFound), true},
		"consumer":        {jetstream.ErrConsumerDeleted, true},
		"no responders":   {nats.ErrNoResponders, true},
		"wrapped context": {context.DeadlineExceeded, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := broker.IsGone(tc.err); got != tc.want {
				t.Fatalf("IsGone(%v) = %v", tc.err, got)
			}
		})
	}
}
