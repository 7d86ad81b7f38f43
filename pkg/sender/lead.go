package sender

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
)

// One sender per shop at a time sends that shop's Shopping Feed updates.
//
// Requests fill only as much as the updates one sender holds: with N
// senders sharing the due orders of a store, each would send its own
// request every latency budget, N where one would do. So the first sender
// that has a due update of a shop takes the shop's lead (a lease in the
// lease bucket, renewed while it runs); any other sender hands each due
// message of that shop to the leader as it is (its JetStream ack subject
// included: the leader settles it as if it had fetched it), and the leader
// claims, prepares, groups and sends them with its own. Nothing else
// changes hands: claims, the intent before the POST, the outcome and the
// ticket check are the leader's, as for its own messages.
//
// A hand-over is a request the leader answers at once. A leader that
// answers that its lanes are full (a backlog draining at the token's rate)
// is alive: the message is NAKed to wait its turn (handOffBusyWait), up to
// handOffBusyMax of such answers in a row, so the backlog still fills the
// leader's requests rather than half-empty ones of each sender. A leader
// that does not answer within handOffTimeout (killed, stalled;
// Deps.HandOffTimeout), or stays full longer, is passed over: the
// sender handles the message itself, and goes on doing so for that shop
// until the lease expires and someone leads again. A leader that answers
// late may handle the message too: the task's claim lets one of them send
// it, and the other finds it claimed or already sent. A message handed to
// a leader that dies is redelivered after the consumer's AckWait
// (broker.SenderAckWait) to any sender.

const (
	handOffTimeout = 250 * time.Millisecond
	// leadCacheTTL is how long a shop's leader, as read, is believed.
	leadCacheTTL = time.Second
	// headerHandOffReply carries a handed-over message's ack subject, and
	// headerHandOffSubject its subject.
	headerHandOffReply   = "Sfsync-Handoff-Reply"
	headerHandOffSubject = "Sfsync-Handoff-Subject"
	// headerHandOffUntil is when the sender that hands a message over
	// stops waiting for the answer (Unix milliseconds): a leader whose
	// lanes are full waits for room until then, and past it leaves the
	// message to that sender.
	headerHandOffUntil = "Sfsync-Handoff-Until"
	// handOffBusyWait is how long a message a full leader could not take
	// waits before it is delivered again, and handOffBusyMax how long a
	// leader may stay full before it is passed over.
	handOffBusyWait = 250 * time.Millisecond
	handOffBusyMax  = 10 * time.Second
)

// handOffResult is what became of a hand-over.
type handOffResult int

const (
	handOffNone  handOffResult = iota // no answer: the leader is gone or stalled
	handOffTaken                      // the leader took the message
	handOffBusy                       // the leader is alive, its lanes full
)

// leads knows, per shop, who sends its updates.
type leads struct {
	// run is Run's context: a lead is held until the sender stops.
	run     context.Context
	s       *Sender
	kv      jetstream.KeyValue
	ttl     time.Duration
	timeout time.Duration // a leader's answer to a hand-over

	mu      sync.Mutex
	known   map[uint32]leadEntry
	mine    map[uint32]bool
	holding sync.WaitGroup
	// busy is when a shop's leader began answering that it is full (its
	// run of such answers), by shop.
	busy map[uint32]time.Time
}

// full records a busy answer of shopID's leader and reports whether the
// message should wait for it (the run of busy answers is short enough).
func (l *leads) full(shopID uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	since, ok := l.busy[shopID]
	if !ok {
		l.busy[shopID] = time.Now()
		return true
	}
	return time.Since(since) < handOffBusyMax
}

// took records that shopID's leader took a message: its run of busy
// answers is over.
func (l *leads) took(shopID uint32) {
	l.mu.Lock()
	delete(l.busy, shopID)
	l.mu.Unlock()
}

type leadEntry struct {
	holder string
	read   time.Time
	// silent: the holder did not answer a hand-over; passed over until the
	// entry is read again.
	silent bool
}

// token makes s one subject token or key part: letters, digits, - and _.
func token(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// handOffSubject is where a sender's leader side listens.
func handOffSubject(instance string) string { return "sfsync.sender.handoff." + token(instance) }

// leaseKey is a shop's lead lease in the lease bucket (the shop database
// named: several databases may share a broker).
func leaseKey(db string, shopID uint32) string {
	return "sender." + token(db) + ".shop." + strconv.FormatUint(uint64(shopID), 10)
}

// leaderOf returns the sender that leads shopID, taking the lead when
// nobody has it; it returns this sender when in doubt (the broker did not
// answer), so that an update is never held up by the lead.
func (l *leads) leaderOf(ctx context.Context, shopID uint32) string {
	l.mu.Lock()
	if l.mine[shopID] {
		l.mu.Unlock()
		return l.s.instance
	}
	e, ok := l.known[shopID]
	l.mu.Unlock()
	if ok && time.Since(e.read) < leadCacheTTL {
		if e.silent {
			return l.s.instance
		}
		return e.holder
	}
	db, err := l.s.ownDB(ctx)
	if err != nil {
		return l.s.instance
	}
	lease := broker.NewLease(l.kv, leaseKey(db, shopID), l.s.instance, l.ttl, l.s.log)
	holder, err := lease.Holder(ctx)
	if err != nil {
		return l.s.instance
	}
	if holder == "" {
		if err := lease.TryAcquire(ctx); err == nil {
			l.hold(l.run, shopID, lease)
			return l.s.instance
		} else if holder, err = lease.Holder(ctx); err != nil || holder == "" {
			return l.s.instance
		}
	}
	l.mu.Lock()
	l.known[shopID] = leadEntry{holder: holder, read: time.Now()}
	l.mu.Unlock()
	return holder
}

// hold keeps a shop's lead until the sender stops (then releases it) or
// the lease is lost.
func (l *leads) hold(ctx context.Context, shopID uint32, lease *broker.Lease) {
	l.mu.Lock()
	l.mine[shopID] = true
	l.mu.Unlock()
	l.s.log.Info("sender leads a shop's updates", "shop_id", shopID)
	l.holding.Add(1)
	go func() {
		defer l.holding.Done()
		lost := make(chan struct{})
		err := lease.Hold(ctx, lost)
		l.mu.Lock()
		delete(l.mine, shopID)
		delete(l.known, shopID)
		l.mu.Unlock()
		if err != nil {
			l.s.log.Warn("sender lost a shop's lead", "shop_id", shopID, "err", err)
		}
	}()
}

// passOver marks a leader that did not answer: this sender handles the
// shop's updates itself until the lead is read again.
func (l *leads) passOver(shopID uint32, holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.known[shopID]; ok && e.holder == holder {
		e.silent = true
		l.known[shopID] = e
	}
}

// handOff gives m to leader.
func (s *Sender) handOff(ctx context.Context, leader string, m jetstream.Msg) handOffResult {
	if m.Reply() == "" {
		return handOffNone
	}
	fwd := nats.NewMsg(handOffSubject(leader))
	fwd.Data = m.Data()
	for k, vs := range m.Headers() {
		for _, v := range vs {
			fwd.Header.Add(k, v)
		}
	}
	fwd.Header.Set(headerHandOffReply, m.Reply())
	fwd.Header.Set(headerHandOffSubject, m.Subject())
	fwd.Header.Set(headerHandOffUntil, strconv.FormatInt(time.Now().Add(s.lead.timeout*3/4).UnixMilli(), 10))
	rctx, cancel := context.WithTimeout(ctx, s.lead.timeout)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(rctx, fwd)
	switch {
	case err != nil:
		return handOffNone
	case string(resp.Data) == "taken":
		s.m.handedOff.Inc()
		return handOffTaken
	case string(resp.Data) == "busy":
		return handOffBusy
	}
	return handOffNone
}

// handOffs is the leader side: the messages other senders hand over go
// to the lane they came from.
type handOffs struct {
	sub    *nats.Subscription
	mu     sync.RWMutex
	closed bool
}

// stop ends the hand-overs before the lanes close (idempotent).
func (h *handOffs) stop() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		_ = h.sub.Unsubscribe()
	}
}

// takeHandOffs receives the messages other senders hand over and gives
// them to their lane, waiting for room while the sender that asked still
// waits; it answers "busy" when the lane stays full or the sender is
// stopping, and the sender that asked handles the message itself.
func (s *Sender) takeHandOffs(lanes map[string]chan jetstream.Msg) (*handOffs, error) {
	h := &handOffs{}
	var err error
	h.sub, err = s.nc.Subscribe(handOffSubject(s.instance), func(req *nats.Msg) {
		reply, subject := req.Header.Get(headerHandOffReply), req.Header.Get(headerHandOffSubject)
		if reply == "" || subject == "" {
			_ = req.Respond([]byte("bad"))
			return
		}
		until := time.Now().Add(handOffTimeout / 2)
		if ms, err := strconv.ParseInt(req.Header.Get(headerHandOffUntil), 10, 64); err == nil {
			until = time.UnixMilli(ms)
		}
		req.Header.Del(headerHandOffReply)
		req.Header.Del(headerHandOffSubject)
		req.Header.Del(headerHandOffUntil)
		m := &handedMsg{nc: s.nc, subject: subject, reply: reply, data: req.Data, header: req.Header}
		lane := laneDue
		if onWaitLane(m) {
			lane = laneWait
		}
		h.mu.RLock()
		defer h.mu.RUnlock()
		if h.closed {
			_ = req.Respond([]byte("busy"))
			return
		}
		wait := time.NewTimer(time.Until(until))
		defer wait.Stop()
		select {
		case lanes[lane] <- m:
			_ = req.Respond([]byte("taken"))
		case <-wait.C:
			// The lanes stayed full: the sender that asked handles it.
			_ = req.Respond([]byte("busy"))
		}
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// handedMsg is a JetStream message another sender handed over: settled by
// publishing to its ack subject, as the client library does.
type handedMsg struct {
	nc      *nats.Conn
	subject string
	reply   string
	data    []byte
	header  nats.Header
}

var errHandedMetadata = errors.New("metadata of a handed-over message is not read")

func (m *handedMsg) Metadata() (*jetstream.MsgMetadata, error) { return nil, errHandedMetadata }
func (m *handedMsg) Data() []byte                              { return m.data }
func (m *handedMsg) Headers() nats.Header                      { return m.header }
func (m *handedMsg) Subject() string                           { return m.subject }
func (m *handedMsg) Reply() string                             { return m.reply }
func (m *handedMsg) Ack() error                                { return m.nc.Publish(m.reply, []byte("+ACK")) }
func (m *handedMsg) Nak() error                                { return m.nc.Publish(m.reply, []byte("-NAK")) }
func (m *handedMsg) InProgress() error                         { return m.nc.Publish(m.reply, []byte("+WPI")) }
func (m *handedMsg) Term() error                               { return m.nc.Publish(m.reply, []byte("+TERM")) }
func (m *handedMsg) TermWithReason(reason string) error {
	return m.nc.Publish(m.reply, []byte("+TERM "+reason))
}

func (m *handedMsg) NakWithDelay(d time.Duration) error {
	if d <= 0 {
		return m.Nak()
	}
	return m.nc.Publish(m.reply, []byte(`-NAK {"delay": `+strconv.FormatInt(d.Nanoseconds(), 10)+`}`))
}

func (m *handedMsg) DoubleAck(ctx context.Context) error {
	_, err := m.nc.RequestWithContext(ctx, m.reply, []byte("+ACK"))
	return err
}
