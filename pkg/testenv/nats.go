package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/localmysql"
)

// Broker is a JetStream server started for one test.
type Broker struct {
	t       testing.TB
	URL     string
	port    int
	dir     string
	mu      sync.Mutex
	inproc  *server.Server
	cmd     *exec.Cmd
	exited  chan struct{}
	binary  string
	stopped bool
}

// NATS starts an in-process nats-server with JetStream on a random port and
// its store in a temp dir; it stops when the test ends.
func NATS(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{t: t, dir: t.TempDir()}
	if err := b.startInProc(-1); err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) startInProc(port int) error {
	opts := &server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: b.dir,
		NoLog: true, NoSigs: true, MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats not ready within 10 s")
	}
	b.inproc = s
	b.URL = s.ClientURL()
	b.port = s.Addr().(*net.TCPAddr).Port
	return nil
}

// NATSBinary starts the nats-server binary from PATH (Debian's is 2.9.10),
// so broker-facing tests also run against the oldest line sfsync supports.
func NATSBinary(t testing.TB) *Broker {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		unavailable(t, "no nats-server binary in PATH (apt-get install nats-server)")
	}
	b := &Broker{t: t, dir: t.TempDir(), binary: bin, port: FreePort(t)}
	if err := b.startBinary(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) startBinary() error {
	log, err := os.OpenFile(filepath.Join(b.dir, "nats-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.binary, "-a", "127.0.0.1", "-p", strconv.Itoa(b.port), "-js", "-sd", filepath.Join(b.dir, "store"))
	cmd.Stdout, cmd.Stderr = log, log
	localmysql.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(exited) }()
	b.cmd, b.exited = cmd, exited
	b.URL = "nats://127.0.0.1:" + strconv.Itoa(b.port)
	return waitTCP(b.URL[len("nats://"):], 10*time.Second)
}

// Stop stops the server (idempotent).
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.stopped = true
	if b.inproc != nil {
		b.inproc.Shutdown()
		b.inproc.WaitForShutdown()
	}
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// Restart stops the server and starts it again on the same port and store.
// With wipe, the store is deleted in between, as after a lost volume.
func (b *Broker) Restart(wipe bool) {
	b.t.Helper()
	b.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	if wipe {
		entries, _ := os.ReadDir(b.dir)
		for _, e := range entries {
			if e.Name() != "nats-server.log" {
				_ = os.RemoveAll(filepath.Join(b.dir, e.Name()))
			}
		}
	}
	b.stopped = false
	var err error
	if b.binary != "" {
		err = b.startBinary()
	} else {
		err = b.startInProc(b.port)
	}
	if err != nil {
		b.t.Fatalf("restart nats: %v", err)
	}
}

// Connect opens a connection closed when the test ends.
func (b *Broker) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(b.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return p
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(addr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections within %s: %w", addr, d, err)
		case <-time.After(30 * time.Millisecond):
		}
	}
}
