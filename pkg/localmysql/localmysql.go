// Package localmysql runs a private MariaDB or MySQL server from the
// binaries in PATH, in a temporary directory, listening on a unix socket:
// the database of the test environment and of `make demo` on a machine
// with no Docker engine. It also wraps any other server reached by DSN.
package localmysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// StrictSQLMode is the sql_mode of the test and demo databases: MySQL 8's
// default (strict, no zero dates, full GROUP BY), which MariaDB accepts as
// well and which is stricter than MariaDB's own default (no NO_ZERO_DATE,
// NO_ZERO_IN_DATE nor ONLY_FULL_GROUP_BY). A private server starts with
// it; testenv sets it on every connection, so a server reached by DSN runs
// the tests in it too.
const StrictSQLMode = "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"

// Server is a MySQL or MariaDB server.
type Server struct {
	// Kind says where it came from: a DSN, testcontainers, or the binary's path.
	Kind string

	root    *mysql.Config
	onClose func()

	mu      sync.Mutex
	dir     string
	binary  string
	mariadb bool
	cmd     *exec.Cmd
	done    chan struct{}
}

// FromDSN wraps a server reached by dsn, whose user may create databases.
func FromDSN(kind, dsn string, onClose func()) (*Server, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid DSN: %w", kind, err)
	}
	return &Server{Kind: kind, root: cfg, onClose: onClose}, nil
}

// RootDSN connects as the administrative user, without a database.
func (s *Server) RootDSN() string { c := s.root.Clone(); c.DBName = ""; return c.FormatDSN() }

// DSN connects to database name, with the options sfsync needs.
func (s *Server) DSN(name string) string {
	c := s.root.Clone()
	c.DBName = name
	c.ParseTime = true
	c.Loc = time.UTC
	return c.FormatDSN()
}

// CreateDatabase creates database name (utf8mb4) if missing and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// DropDatabase drops database name.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
	return err
}

// WaitReady waits until the server answers.
func (s *Server) WaitReady(d time.Duration) error {
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
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("mysql (%s) exited while starting: %s", s.Kind, s.errorLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) errorLog() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "error.log"))
	if err != nil {
		return "no error log"
	}
	return lastLines(string(b), 40)
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

// ErrNoBinary is returned by Start when neither mariadbd nor mysqld is installed.
var ErrNoBinary = errors.New("no mariadbd or mysqld in PATH (Debian: apt-get install mariadb-server)")

// Start initialises a data directory in a new temp dir and starts a
// private server on a unix socket in it (about a second with MariaDB).
func Start() (*Server, error) {
	bin := findBinary("mariadbd", "mysqld")
	if bin == "" {
		return nil, ErrNoBinary
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
	s := &Server{Kind: bin, dir: dir, binary: bin, mariadb: strings.Contains(string(out), "MariaDB")}
	if err := s.initialize(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.root = &mysql.Config{User: "root", Net: "unix", Addr: filepath.Join(dir, "mysql.sock"), AllowNativePasswords: true, Params: map[string]string{}}
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) initialize() error {
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

// Start starts the server process (again, after Stop, on the same data).
func (s *Server) Start() error {
	s.mu.Lock()
	if s.binary == "" {
		s.mu.Unlock()
		return errors.New("only a private server can be started")
	}
	// Its temporary files (an information_schema query's temp tables, say)
	// in a directory of its own, not the shared /tmp: the suite's servers
	// run side by side, and a make test on a fresh clone once failed on
	// "Error on delete of '/tmp/#sql-temptable-…' (Errcode: 2)".
	tmp := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.dir, "data"),
		"--tmpdir=" + tmp,
		"--socket=" + filepath.Join(s.dir, "mysql.sock"),
		"--pid-file=" + filepath.Join(s.dir, "mysql.pid"),
		"--log-error=" + filepath.Join(s.dir, "error.log"),
		"--skip-networking",
		"--skip-name-resolve",
		"--max-connections=1000",
		"--innodb-buffer-pool-size=256M",
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
		"--sql-mode=" + StrictSQLMode,
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
	KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		unexpected := s.cmd == cmd // Stop clears s.cmd first
		s.mu.Unlock()
		if unexpected {
			// A crash (MariaDB writes its backtrace to the error log): say
			// so before the directory is removed.
			fmt.Fprintf(os.Stderr, "localmysql: %s exited unexpectedly (%v); last lines of its error log:\n%s\n", s.binary, err, s.errorLog())
		}
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return s.WaitReady(60 * time.Second)
}

// Stop stops a private server; with kill it is SIGKILLed, as in a crash.
func (s *Server) Stop(kill bool) {
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
		_ = cmd.Process.Signal(sigTERM)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Close stops the server and removes what it left.
func (s *Server) Close() {
	if s.onClose != nil {
		s.onClose()
		return
	}
	s.Stop(false)
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
