// Package broker connects to NATS and declares, in one place, every stream,
// consumer and KV bucket sfsync uses. Services call Declare at startup; it
// creates what is missing and updates what changed, so several processes
// starting at once converge on the same definitions.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/events"
)

// Config is the NATS part of a service's configuration.
type Config struct {
	URL      string        `env:"NATS_URL, default=nats://127.0.0.1:4222"`
	Creds    string        `env:"NATS_CREDS"`
	User     string        `env:"NATS_USER"`
	Password config.Secret `env:"NATS_PASSWORD"`
	// NKey is a file holding an nkey user seed (SU…); the embedded broker
	// of sfsync takes its public key.
	NKey     string `env:"NATS_NKEY"`
	TLSCA    string `env:"NATS_TLS_CA"`
	TLSCert  string `env:"NATS_TLS_CERT"`
	TLSKey   string `env:"NATS_TLS_KEY"`
	Replicas int    `env:"NATS_REPLICAS, default=1"`
}

// Validate checks the rules that span several variables.
func (c Config) Validate() error {
	if c.Replicas < 1 || c.Replicas > 5 {
		return config.Invalid("NATS_REPLICAS", "%d is not between 1 and 5", c.Replicas)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return config.Invalid("NATS_TLS_CERT", "NATS_TLS_CERT and NATS_TLS_KEY go together")
	}
	if c.Creds != "" && c.User != "" {
		return config.Invalid("NATS_CREDS", "set NATS_CREDS or NATS_USER, not both")
	}
	if c.Password != "" && c.User == "" {
		return config.Invalid("NATS_USER", "NATS_PASSWORD is set without NATS_USER")
	}
	if c.User != "" && c.Password == "" {
		return config.Invalid("NATS_PASSWORD", "NATS_USER is set without NATS_PASSWORD")
	}
	if c.NKey != "" && (c.Creds != "" || c.User != "") {
		return config.Invalid("NATS_NKEY", "set one of NATS_NKEY, NATS_CREDS and NATS_USER")
	}
	return nil
}

// Authenticated reports whether the configuration names credentials.
func (c Config) Authenticated() bool { return c.User != "" || c.Creds != "" || c.NKey != "" }

// Options are the connection options the configuration asks for:
// credentials (NATS_CREDS, NATS_USER/NATS_PASSWORD or NATS_NKEY) and TLS
// (NATS_TLS_*). Workers and operator commands connect with the same.
func (c Config) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
	}
	if c.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" || c.TLSCert != "" {
		tc, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// Connect opens a NATS connection that reconnects forever and logs its
// disconnections. name identifies the client in the server's monitoring.
func Connect(c Config, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	auth, err := c.Options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	opts = append(opts, extra...)
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", config.RedactURL(c.URL), config.RedactErr(err, c.URL))
	}
	return nc, nil
}

func tlsConfig(c Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("read NATS_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("NATS_TLS_CA: %s holds no PEM certificate", c.TLSCA)
		}
		tc.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load NATS_TLS_CERT/NATS_TLS_KEY: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Streams, consumers and buckets; the subjects and headers of the
// messages are the event contract's (pkg/events).
const (
	OrdersStream  = "SFSYNC_ORDERS"
	TicketsStream = "SFSYNC_TICKETS"
	// DeadStream keeps the messages the sender and the ticket poller gave
	// up on (events.DeadSubject) for 30 days: `sfsync status` counts them,
	// `sfsync retry --dead` sends them again.
	DeadStream = "SFSYNC_DEAD"

	// SenderConsumer takes due changes; SenderWaitConsumer holds the updates
	// that wait (shipments), on a consumer of their own so that their delayed
	// NAKs never hold the slots urgent changes need.
	SenderConsumer     = "sender"
	SenderWaitConsumer = "sender-wait"
	// TicketConsumer takes new batches; TicketWaitConsumer the re-checks.
	TicketConsumer     = "ticketpoller"
	TicketWaitConsumer = "ticketpoller-wait"

	// LeaseBucket holds leader leases; its TTL is the lease length.
	LeaseBucket = "sfsync_leases"
	// CheckpointBucket holds the detector's positions, moved by compare-and-set.
	CheckpointBucket = "sfsync_checkpoints"
	// BudgetBucket holds each Shopping Feed token's shared request budget
	// (pkg/ratebudget); an entry unused for a day goes.
	BudgetBucket = "sfsync_budget"
)

// Settings tune the declarations; zero values take the defaults.
type Settings struct {
	Replicas int
	// LeaseTTL is the lease bucket's TTL (default 10 s).
	LeaseTTL time.Duration
	// Retention is how long messages stay for inspection and replay (default 7 days).
	Retention time.Duration
	// Duplicates is the dedup window (default 10 min: longer than any
	// restart or gap grace period).
	Duplicates time.Duration
	// MaxBytes bounds each stream's store (default 1 GiB). Past it the
	// oldest messages go (DiscardOld), so publishing never fails for lack
	// of room: the task table is the truth, and the detector's sweeper
	// publishes again any task whose message went this way (a task that
	// makes no progress for SWEEP_AFTER once due).
	MaxBytes int64
}

func (s Settings) withDefaults() Settings {
	if s.Replicas < 1 {
		s.Replicas = 1
	}
	if s.LeaseTTL <= 0 {
		s.LeaseTTL = 10 * time.Second
	}
	if s.Retention <= 0 {
		s.Retention = 7 * 24 * time.Hour
	}
	if s.Duplicates <= 0 {
		s.Duplicates = 10 * time.Minute
	}
	if s.MaxBytes <= 0 {
		s.MaxBytes = 1 << 30
	}
	return s
}

// SenderAckWait is the sender consumers' AckWait: a message a sender held
// when it died comes back to another within it. A sender reports progress
// on the messages it holds every third of it (and of CLAIM_TTL).
const SenderAckWait = 10 * time.Second

// WaitingMaxAckPending bounds the updates that may wait at once on a wait
// consumer: each waiting update holds one slot for its whole delay.
const WaitingMaxAckPending = 1_000_000

// declarations are every stream, consumer and bucket sfsync uses, as
// Declare creates them with s; Missing checks the same list.
type declarations struct {
	streams   []jetstream.StreamConfig
	consumers []consumerDecl
	buckets   []jetstream.KeyValueConfig
}

// consumerDecl is a durable consumer on its stream.
type consumerDecl struct {
	stream string
	cfg    jetstream.ConsumerConfig
}

func declared(s Settings) declarations {
	s = s.withDefaults()
	d := declarations{
		streams: []jetstream.StreamConfig{
			{
				Name:        OrdersStream,
				Description: "sfsync: order state changes and waiting updates",
				Subjects:    []string{events.OrderStatusPrefix + ".>", events.OrderWaitPrefix + ".>"},
				Retention:   jetstream.LimitsPolicy,
				MaxAge:      s.Retention,
				MaxBytes:    s.MaxBytes,
				Discard:     jetstream.DiscardOld,
				Duplicates:  s.Duplicates,
				Storage:     jetstream.FileStorage,
				Replicas:    s.Replicas,
			},
			{
				Name:        TicketsStream,
				Description: "sfsync: Shopping Feed batches whose tickets are followed",
				Subjects:    []string{events.TicketCheckPrefix + ".>", events.TicketWaitPrefix + ".>"},
				Retention:   jetstream.LimitsPolicy,
				MaxAge:      s.Retention,
				MaxBytes:    s.MaxBytes,
				Discard:     jetstream.DiscardOld,
				Duplicates:  s.Duplicates,
				Storage:     jetstream.FileStorage,
				Replicas:    s.Replicas,
			},
			{
				Name:        DeadStream,
				Description: "sfsync: messages given up after repeated failures",
				Subjects:    []string{events.DeadPrefix + ".>"},
				Retention:   jetstream.LimitsPolicy,
				MaxAge:      30 * 24 * time.Hour,
				MaxBytes:    s.MaxBytes,
				Discard:     jetstream.DiscardOld,
				Storage:     jetstream.FileStorage,
				Replicas:    s.Replicas,
			},
		},
		buckets: []jetstream.KeyValueConfig{
			{Bucket: LeaseBucket, Description: "sfsync: leader leases", TTL: s.LeaseTTL, History: 1, Replicas: s.Replicas, Storage: jetstream.FileStorage},
			{Bucket: CheckpointBucket, Description: "sfsync: detector positions", History: 5, Replicas: s.Replicas, Storage: jetstream.FileStorage},
			{Bucket: BudgetBucket, Description: "sfsync: request budget per Shopping Feed token", TTL: 24 * time.Hour, History: 1, Replicas: s.Replicas, Storage: jetstream.FileStorage},
		},
	}
	for _, c := range []struct {
		stream, name, filter string
		maxAckPending        int
		ackWait              time.Duration
	}{
		{OrdersStream, SenderConsumer, events.OrderStatusPrefix + ".>", 1000, SenderAckWait},
		{OrdersStream, SenderWaitConsumer, events.OrderWaitPrefix + ".>", WaitingMaxAckPending, SenderAckWait},
		{TicketsStream, TicketConsumer, events.TicketCheckPrefix + ".>", 1000, 60 * time.Second},
		{TicketsStream, TicketWaitConsumer, events.TicketWaitPrefix + ".>", WaitingMaxAckPending, 60 * time.Second},
	} {
		d.consumers = append(d.consumers, consumerDecl{c.stream, consumer(c.name, c.filter, c.maxAckPending, c.ackWait, s.Replicas)})
	}
	return d
}

// Declare creates or updates every stream, consumer and bucket.
func Declare(ctx context.Context, js jetstream.JetStream, s Settings) error {
	d := declared(s)
	for _, sc := range d.streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("declare stream %s: %w", sc.Name, err)
		}
	}
	for _, c := range d.consumers {
		if _, err := js.CreateOrUpdateConsumer(ctx, c.stream, c.cfg); err != nil {
			return fmt.Errorf("declare consumer %s on %s: %w", c.cfg.Durable, c.stream, err)
		}
	}
	for _, b := range d.buckets {
		if _, err := createOrUpdateKV(ctx, js, b); err != nil {
			return fmt.Errorf("declare bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

func consumer(name, filter string, maxAckPending int, ackWait time.Duration, replicas int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "sfsync " + name,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		Replicas:      replicas,
	}
}

func createOrUpdateKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.UpdateKeyValue(ctx, cfg)
	}
	return kv, err
}
