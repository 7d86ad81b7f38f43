package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/testcontainers/testcontainers-go"
	tcmysql "github.com/testcontainers/testcontainers-go/modules/mysql"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// MySQLImage is the image testcontainers starts when a Docker engine answers.
const MySQLImage = "mysql:8.4.3"

// DB is one fresh database for one test.
type DB struct {
	Name string
	// DSN connects to it (go-sql-driver form).
	DSN string
	DB  *sql.DB
}

// Config is the prestashop.Config for this database with prefix ps_.
func (d *DB) Config() prestashop.Config {
	return prestashop.Config{DSN: config.Secret(d.DSN), Prefix: "ps_"}
}

var shared struct {
	once sync.Once
	srv  *MySQLServer
	err  error
}

// MySQL returns a fresh, empty database on the shared server, dropped when
// the test ends.
func MySQL(t testing.TB) *DB {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = startShared() })
	if shared.err != nil {
		unavailable(t, "mysql: %v", shared.err)
	}
	return shared.srv.NewDatabase(t)
}

// Shop returns a fresh database with PrestaShop's core tables, the module's
// tables and sfsync's migrations (shopfixture.Install), and its store.
func Shop(t testing.TB) (*DB, *prestashop.Store, *shopfixture.Fixture) {
	t.Helper()
	d := MySQL(t)
	ctx := context.Background()
	if err := shopfixture.Install(ctx, d.DB, "ps_"); err != nil {
		t.Fatalf("install shop fixture: %v", err)
	}
	return d, prestashop.New(d.DB, "ps_"), shopfixture.New(d.DB, "ps_")
}

func startShared() (*MySQLServer, error) {
	if dsn := os.Getenv("TEST_MYSQL_DSN"); dsn != "" {
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("TEST_MYSQL_DSN: %w", err)
		}
		srv := &MySQLServer{root: cfg, Kind: "TEST_MYSQL_DSN"}
		return srv, srv.waitReady(10 * time.Second)
	}
	if srv, err := startContainer(); err == nil {
		return srv, nil
	} else if !errors.Is(err, errNoDocker) {
		return nil, err
	}
	return startLocal()
}

func stopShared() {
	if shared.srv != nil {
		shared.srv.Close()
	}
}

// MySQLServer is a MySQL or MariaDB server tests may use.
type MySQLServer struct {
	// Kind says where it came from: TEST_MYSQL_DSN, testcontainers, or the binary's path.
	Kind string
	root *mysql.Config

	mu        sync.Mutex
	dir       string
	binary    string
	mariadb   bool
	cmd       *exec.Cmd
	done      chan struct{}
	container testcontainers.Container
}

// RootDSN connects as the administrative user, without a database.
func (s *MySQLServer) RootDSN() string { c := s.root.Clone(); c.DBName = ""; return c.FormatDSN() }

// NewDatabase creates a fresh database dropped when the test ends.
func (s *MySQLServer) NewDatabase(t testing.TB) *DB {
	t.Helper()
	root, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	defer root.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := root.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	cfg := s.root.Clone()
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	d := &DB{Name: name, DSN: cfg.FormatDSN()}
	d.DB, err = sql.Open("mysql", d.DSN)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		d.DB.Close()
		r, err := sql.Open("mysql", s.RootDSN())
		if err == nil {
			_, _ = r.Exec("DROP DATABASE IF EXISTS `" + name + "`")
			r.Close()
		}
	})
	return d
}

func (s *MySQLServer) waitReady(d time.Duration) error {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mysql (%s) not ready within %s: %w", s.Kind, d, err)
		}
		select {
		case <-s.exited():
			return fmt.Errorf("mysql (%s) exited while starting; see %s", s.Kind, filepath.Join(s.dir, "error.log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *MySQLServer) exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return nil
	}
	return s.done
}

var errNoDocker = errors.New("no docker engine")

func startContainer() (*MySQLServer, error) {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return nil, errNoDocker
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return nil, errNoDocker
	}
	defer provider.Close()
	if err := provider.Health(ctx); err != nil {
		return nil, errNoDocker
	}
	runCtx, cancelRun := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelRun()
	c, err := tcmysql.Run(runCtx, MySQLImage, tcmysql.WithUsername("root"), tcmysql.WithPassword("sfsync"), tcmysql.WithDatabase("sfsync"))
	if err != nil {
		return nil, fmt.Errorf("start %s with testcontainers: %w", MySQLImage, err)
	}
	dsn, err := c.ConnectionString(runCtx)
	if err != nil {
		_ = c.Terminate(context.Background())
		return nil, fmt.Errorf("testcontainers connection string: %w", err)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		_ = c.Terminate(context.Background())
		return nil, err
	}
	srv := &MySQLServer{Kind: "testcontainers " + MySQLImage, root: cfg, container: c}
	return srv, srv.waitReady(time.Minute)
}

// StartPrivateMySQL starts a private mariadbd or mysqld for this test alone,
// which the test may Stop and Start (e.g. to see readiness fail).
func StartPrivateMySQL(t testing.TB) *MySQLServer {
	t.Helper()
	srv, err := startLocal()
	if err != nil {
		unavailable(t, "private mysql: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func findBinary(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"} {
			p := filepath.Join(dir, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	return ""
}

func startLocal() (*MySQLServer, error) {
	bin := findBinary("mariadbd", "mysqld")
	if bin == "" {
		return nil, errors.New("no mariadbd or mysqld in PATH (apt-get install mariadb-server), no Docker engine, and TEST_MYSQL_DSN unset")
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", bin, err)
	}
	// A short path: the unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "sfsync-mysql-")
	if err != nil {
		return nil, err
	}
	srv := &MySQLServer{Kind: bin, dir: dir, binary: bin, mariadb: strings.Contains(string(out), "MariaDB")}
	if err := srv.initialize(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv.root = &mysql.Config{User: "root", Net: "unix", Addr: filepath.Join(dir, "mysql.sock"), AllowNativePasswords: true, Params: map[string]string{}}
	if err := srv.Start(); err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

func (s *MySQLServer) initialize() error {
	data := filepath.Join(s.dir, "data")
	var cmd *exec.Cmd
	if s.mariadb {
		install := findBinary("mariadb-install-db", "mysql_install_db")
		if install == "" {
			return errors.New("mariadb-install-db not found next to " + s.binary)
		}
		args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		cmd = exec.Command(install, args...)
	} else {
		args := []string{"--no-defaults", "--initialize-insecure", "--datadir=" + data}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		cmd = exec.Command(s.binary, args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initialize mysql data dir with %s: %w: %s", cmd.Path, err, lastLines(string(out), 10))
	}
	return nil
}

// Start starts the server process (after Stop, on the same data).
func (s *MySQLServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.binary == "" {
		return errors.New("only a private server can be started")
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.dir, "data"),
		"--socket=" + filepath.Join(s.dir, "mysql.sock"),
		"--pid-file=" + filepath.Join(s.dir, "mysql.pid"),
		"--log-error=" + filepath.Join(s.dir, "error.log"),
		"--skip-networking",
		"--skip-name-resolve",
		"--max-connections=1000",
		"--innodb-buffer-pool-size=256M",
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
	}
	if s.mariadb {
		args = append(args, "--innodb-doublewrite=0")
	} else {
		args = append(args, "--skip-log-bin", "--mysqlx=OFF")
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(s.binary, args...)
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	err := s.waitReady(60 * time.Second)
	s.mu.Lock()
	return err
}

// Stop stops a private server; with kill it is SIGKILLed, as in a crash.
func (s *MySQLServer) Stop(kill bool) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	if kill {
		_ = cmd.Process.Kill()
	} else {
		_ = cmd.Process.Signal(syscallTERM)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Close stops the server and removes what it left.
func (s *MySQLServer) Close() {
	if s.container != nil {
		_ = s.container.Terminate(context.Background())
		return
	}
	s.Stop(false)
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// Port is 0: private servers listen on their unix socket only (DSNs carry it).
func (s *MySQLServer) String() string { return s.Kind + " " + strconv.Quote(s.root.Addr) }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
