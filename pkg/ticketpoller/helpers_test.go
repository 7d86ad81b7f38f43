package ticketpoller_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuf is a log sink tests read while the poller writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// count counts the log lines holding every one of parts.
func (s *syncBuf) count(parts ...string) int {
	n := 0
	for _, line := range strings.Split(s.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// env is a shop with Shopping Feed set up, a broker, and the sandbox.
type env struct {
	t     testing.TB
	ctx   context.Context
	db    *testenv.DB
	store *prestashop.Store
	fx    *shopfixture.Fixture
	shop  shopfixture.SFShop
	nats  *testenv.Broker
	nc    *nats.Conn
	js    jetstream.JetStream
	sb    *sfsandbox.Server
	sf    *shoppingfeed.Client
	logs  *syncBuf
	log   *slog.Logger
	seq   int64
}

// newEnv builds the environment; tune changes the sandbox's configuration.
func newEnv(t testing.TB, tune func(*sfsandbox.Config)) *env {
	t.Helper()
	ctx := t.Context()
	db, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, sfsandboxtest.Token, strconv.Itoa(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	b := testenv.NATS(t)
	nc, js := b.Connect(t)
	if err := broker.Declare(ctx, js, broker.Settings{}); err != nil {
		t.Fatal(err)
	}
	sc := sfsandboxtest.Config()
	if tune != nil {
		tune(&sc)
	}
	sb := sfsandboxtest.New(t, sc)
	logs := &syncBuf{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sf, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: sb.URL, RateLimit: "none", MaxRetries: 1, Timeout: 5 * time.Second},
		log, nil, shoppingfeed.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, db: db, store: store, fx: fx, shop: shop, nats: b, nc: nc, js: js, sb: sb, sf: sf, logs: logs, log: log}
}

// testConfig is a fast poller configuration.
func testConfig() ticketpoller.Config {
	return ticketpoller.Config{
		MaxAge: time.Hour, BackoffMin: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond,
		Concurrency: 4, CheckTimeout: 10 * time.Second,
		ReportInterval: time.Hour, ReportMaxRows: 500, SMTPTimeout: 5 * time.Second,
	}
}

type running struct {
	p      *ticketpoller.Poller
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *running) stop() { r.cancel(); <-r.done }

// start runs a poller (and its report loop) until the test ends.
func (e *env) start(cfg ticketpoller.Config, instance string, tlsCfg *tls.Config) *running {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	p, err := ticketpoller.New(cfg, ticketpoller.Deps{
		Store: e.store, NC: e.nc, SF: e.sf, Log: e.log.With("instance", instance), Registry: reg,
		Instance: instance, DrainTimeout: 5 * time.Second, SMTPTLS: tlsCfg,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, reg: reg, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = p.Run(ctx) }()
	go func() { defer wg.Done(); _ = p.RunReports(ctx) }()
	go func() { wg.Wait(); close(r.done) }()
	e.t.Cleanup(r.stop)
	return r
}

// order is a Shopping Feed order of the shop.
type order struct {
	ID        uint32
	SFID      int64 // 0: known by reference only
	Reference string
	MPRef     string
	Channel   string
}

// newOrder creates an order in state shipped with a tracking number;
// byRef makes it one Shopping Feed knows by reference only.
func (e *env) newOrder(byRef bool) order {
	e.t.Helper()
	e.seq++
	o := order{SFID: 5000 + e.seq, MPRef: fmt.Sprintf("MP-%d-%d", e.seq, time.Now().UnixNano()%100000), Channel: "amazon"}
	link := &shopfixture.SFLink{MarketplaceRef: o.MPRef, Channel: o.Channel, TokenID: e.shop.TokenID}
	if byRef {
		o.SFID = 0
	} else {
		link.InternalID = strconv.FormatInt(o.SFID, 10)
	}
	id, err := e.fx.CreateOrder(e.ctx, shopfixture.OrderSpec{ShopID: 1, CarrierID: e.shop.CarrierID, SF: link})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.fx.ChangeState(e.ctx, id, shopfixture.StateShipped); err != nil {
		e.t.Fatal(err)
	}
	o.ID = id
	if err := e.db.DB.QueryRowContext(e.ctx, "SELECT reference FROM ps_orders WHERE id_order = ?", id).Scan(&o.Reference); err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (o order) ref() shoppingfeed.OrderRef {
	if o.SFID != 0 {
		return shoppingfeed.OrderRef{ID: o.SFID}
	}
	return shoppingfeed.OrderRef{Reference: o.MPRef, ChannelName: o.Channel}
}

// sent is a batch the test sent as the sender would have.
type sent struct {
	BatchID string
	Tasks   map[uint32]uint64 // order → task
	Check   *sfsyncv1.TicketCheck
}

// sendOpts vary what send does.
type sendOpts struct {
	noTracking bool   // ship without a tracking number: the ticket fails
	tokenID    uint32 // sfsync_token_id and token_id (default the shop's token)
	noPublish  bool
	skipTask   map[uint32]bool // orders sent without a task row (nor a message entry)
}

// send does what the sender does on a 202: POST the operation, move each
// order's task to CHECK_TICKET_SYNC_STATUS with the batch id, and publish
// the TicketCheck.
func (e *env) send(orders []order, so sendOpts) sent {
	e.t.Helper()
	ops := make([]shoppingfeed.OrderOperation, len(orders))
	for i, o := range orders {
		ops[i] = shoppingfeed.OrderOperation{Order: o.ref(), Carrier: "Colissimo"}
		if !so.noTracking {
			ops[i].TrackingNumber = "6A" + strconv.Itoa(int(o.ID))
		}
	}
	tokenID := so.tokenID
	if tokenID == 0 {
		tokenID = e.shop.TokenID
	}
	b, err := e.sf.Operate(e.ctx, config.Secret(sfsandboxtest.Token), e.shop.StoreID, shoppingfeed.OpShip, ops)
	if err != nil {
		e.t.Fatal(err)
	}
	s := sent{BatchID: b.ID, Tasks: map[uint32]uint64{}, Check: &sfsyncv1.TicketCheck{
		StoreId: e.shop.StoreID, ShopId: 1, BatchId: b.ID, Operation: "ship", TokenId: tokenID, FirstSeen: timestamppb.Now(),
	}}
	for _, o := range orders {
		if so.skipTask[o.ID] {
			continue
		}
		s.Tasks[o.ID] = e.insertTask(o.ID, b.ID, tokenID)
		ref := o.MPRef
		sfid := ""
		if o.SFID != 0 {
			sfid, ref = strconv.FormatInt(o.SFID, 10), ""
		}
		s.Check.Orders = append(s.Check.Orders, &sfsyncv1.TicketOrder{OrderId: o.ID, TaskId: s.Tasks[o.ID], SfOrderId: sfid,
			Reference: ref, Channel: o.Channel})
	}
	if !so.noPublish {
		e.publish(s.Check, "batch."+e.shop.StoreID+"."+b.ID)
	}
	return s
}

// insertTask writes the row the sender leaves after a 202.
func (e *env) insertTask(orderID uint32, batchID string, tokenID uint32) uint64 {
	e.t.Helper()
	res, err := e.db.DB.ExecContext(e.ctx, "INSERT INTO ps_shoppingfeed_task_order (action, id_order, batch_id, date_add, date_upd,"+
		" sfsync_operation, sfsync_store_id, sfsync_token_id, sfsync_progress_at, sfsync_history_last)"+
		" VALUES ('CHECK_TICKET_SYNC_STATUS', ?, ?, NOW(), NOW(), 'ship', ?, NULLIF(?, 0), NOW(), (SELECT MAX(id_order_history) FROM ps_order_history WHERE id_order = ?))",
		orderID, batchID, e.shop.StoreID, tokenID, orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return uint64(id)
}

func (e *env) publish(tc *sfsyncv1.TicketCheck, msgID string) {
	e.t.Helper()
	body, err := protojson.Marshal(tc)
	if err != nil {
		e.t.Fatal(err)
	}
	m := nats.NewMsg(events.TicketCheckSubject(tc.StoreId))
	m.Data = body
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	m.Header.Set(events.HeaderStore, tc.StoreId)
	m.Header.Set(events.HeaderBatch, tc.BatchId)
	m.Header.Set(events.HeaderShop, strconv.FormatUint(uint64(tc.ShopId), 10))
	m.Header.Set(events.HeaderOperation, tc.Operation)
	if _, err := e.js.PublishMsg(e.ctx, m); err != nil {
		e.t.Fatal(err)
	}
}

// task is a task row as the tests look at it.
type task struct {
	ID         uint64
	Action     string
	Ticket     string
	FailedAt   sql.NullTime
	Error      string
	ReportedAt sql.NullTime
	ProgressAt sql.NullTime
}

func (e *env) task(id uint64) (task, bool) {
	e.t.Helper()
	var t task
	var ticket, msg sql.NullString
	err := e.db.DB.QueryRowContext(e.ctx, "SELECT id_shoppingfeed_task_order, action, ticket_number, sfsync_failed_at, sfsync_error,"+
		" sfsync_reported_at, sfsync_progress_at FROM ps_shoppingfeed_task_order WHERE id_shoppingfeed_task_order = ?", id).
		Scan(&t.ID, &t.Action, &ticket, &t.FailedAt, &msg, &t.ReportedAt, &t.ProgressAt)
	if errors.Is(err, sql.ErrNoRows) {
		return task{}, false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	t.Ticket, t.Error = ticket.String, msg.String
	return t, true
}

// logLine is a shoppingfeed_processlogger row.
type logLine struct {
	Name, Msg, Level, Object string
	ObjectID                 uint32
}

func (e *env) processLog(orderID uint32) []logLine {
	e.t.Helper()
	rows, err := e.db.DB.QueryContext(e.ctx, "SELECT name, msg, level, COALESCE(object_name, ''), COALESCE(object_id, 0)"+
		" FROM ps_shoppingfeed_processlogger WHERE object_id = ? ORDER BY id_shoppingfeed_processlogger", orderID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []logLine
	for rows.Next() {
		var l logLine
		if err := rows.Scan(&l.Name, &l.Msg, &l.Level, &l.Object, &l.ObjectID); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.DB.QueryRowContext(e.ctx, q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ticketReads counts the sandbox's answered ticket reads of a batch.
func (e *env) ticketReads(batchID string) int {
	n := 0
	for _, r := range e.sb.Requests() {
		if r.Method == "GET" && strings.Contains(r.Path, "/ticket?") && strings.Contains(r.Path, "batchId="+batchID) {
			n++
		}
	}
	return n
}

// smtpServer is an SMTP server run by the test (go-smtp), which keeps
// every message it accepts.
type smtpServer struct {
	t          testing.TB
	addr       string
	user, pass string
	tls        *tls.Config

	mu   sync.Mutex
	srv  *gosmtp.Server
	msgs []received
	auth []string // users that authenticated
}

type received struct {
	From string
	To   []string
	Data []byte
}

// newSMTPServer reserves an address; up starts listening on it.
func newSMTPServer(t testing.TB, user, pass string, tlsCfg *tls.Config) *smtpServer {
	s := &smtpServer{t: t, addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), user: user, pass: pass, tls: tlsCfg}
	t.Cleanup(s.down)
	return s
}

func (s *smtpServer) url() string {
	scheme := "smtp://"
	if s.user != "" {
		return scheme + s.user + ":" + strings.ReplaceAll(s.pass, "@", "%40") + "@" + s.addr
	}
	return scheme + s.addr
}

func (s *smtpServer) up() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &smtpSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = s.tls == nil
	srv.TLSConfig = s.tls
	srv.ErrorLog = discardLogger{}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after down
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("smtp listen: %v", err)
	}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

func (s *smtpServer) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type smtpSession struct {
	s      *smtpServer
	authed bool
	from   string
	to     []string
}

func (x *smtpSession) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != x.s.user || pass != x.s.pass {
			return errors.New("invalid credentials")
		}
		x.authed = true
		x.s.mu.Lock()
		x.s.auth = append(x.s.auth, user)
		x.s.mu.Unlock()
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if x.s.user != "" && !x.authed {
		return gosmtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, received{From: x.from, To: x.to, Data: b})
	x.s.mu.Unlock()
	return nil
}

func (x *smtpSession) Reset()        { x.from, x.to = "", nil }
func (x *smtpSession) Logout() error { return nil }

// parsedMail is a received message split into its headers and parts.
type parsedMail struct {
	Header mail.Header
	Parts  map[string]string // media type → decoded body
}

func parseMail(t testing.TB, data []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read mail: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	pm := parsedMail{Header: m.Header, Parts: map[string]string{}}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("mail part: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		b, err := io.ReadAll(p) // quoted-printable is decoded by the reader
		if err != nil {
			t.Fatalf("mail part: %v", err)
		}
		pm.Parts[pt] = string(b)
	}
	return pm
}

// selfSigned returns a server TLS config for 127.0.0.1 and a client one
// that trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// consumerInfo reads a consumer's state.
func (e *env) consumerInfo(name string) *jetstream.ConsumerInfo {
	e.t.Helper()
	c, err := e.js.Consumer(e.ctx, broker.TicketsStream, name)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := c.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}
