package sender

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/internal/pause"
)

// consumeLane consumes one lane's durable consumer into msgs until ctx
// ends, then drains it: when it returns, nothing more arrives on msgs.
//
// A consume stops for good when its consumer is deleted (nats.go ends it on
// a 409), and asks for messages in vain while the consumer or its stream
// does not exist (a broker that restarted with its store wiped): the lane
// would never receive anything again. So a consume that stops, or reports
// that its consumer is gone, while the sender is not shutting down, is
// replaced: the lane waits for the consumer to exist again (nudging the
// keeper that declares it) and consumes anew. The messages already handed
// to the workers finish as usual; their acknowledgements may go nowhere,
// and the task table and the sweeper cover them.
func (s *Sender) consumeLane(ctx context.Context, lane, consumer string, msgs chan<- jetstream.Msg) {
	restart := 200 * time.Millisecond
	for {
		cons, ok := s.openConsumer(ctx, lane, consumer)
		if !ok {
			return
		}
		gone := make(chan error, 1)
		cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m },
			jetstream.PullMaxMessages(4*s.cfg.Workers+64),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				switch {
				case broker.IsGone(err):
					select {
					case gone <- err:
					default:
					}
				case !errors.Is(err, jetstream.ErrNoHeartbeat):
					s.log.Debug("consume", "lane", lane, "err", err)
				}
			}))
		if err != nil {
			s.log.Warn("consume failed, retrying", "lane", lane, "consumer", consumer, "err", err)
			if !pause.For(ctx, restart) {
				return
			}
			restart = min(2*restart, 5*time.Second)
			continue
		}
		began := time.Now()
		select {
		case <-ctx.Done():
			cc.Drain()
			<-cc.Closed()
			return
		case <-cc.Closed():
			s.log.Warn("sender consume stopped; consuming again", "lane", lane, "consumer", consumer)
		case err := <-gone:
			s.log.Warn("sender consumer gone; consuming again once it exists", "lane", lane, "consumer", consumer, "err", err)
			cc.Stop()
			<-cc.Closed()
		}
		s.keeper.Nudge()
		if time.Since(began) > time.Minute {
			restart = 200 * time.Millisecond
		}
		if !pause.For(ctx, restart) {
			return
		}
		restart = min(2*restart, 5*time.Second)
	}
}

// openConsumer waits until the lane's consumer exists; ok is false when ctx
// ended first.
func (s *Sender) openConsumer(ctx context.Context, lane, consumer string) (jetstream.Consumer, bool) {
	for wait, logged := 200*time.Millisecond, false; ; wait = min(2*wait, 5*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := s.js.Consumer(cctx, broker.OrdersStream, consumer)
		cancel()
		if err == nil {
			if logged {
				s.log.Info("sender consumer back", "lane", lane, "consumer", consumer)
			}
			return cons, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		if broker.IsGone(err) {
			s.keeper.Nudge()
		}
		if !logged {
			s.log.Warn("open consumer, retrying", "lane", lane, "consumer", consumer, "err", err)
			logged = true
		}
		if !pause.For(ctx, wait) {
			return nil, false
		}
	}
}
