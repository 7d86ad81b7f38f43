package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/testcontainers/testcontainers-go"
	tcmysql "github.com/testcontainers/testcontainers-go/modules/mysql"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/localmysql"
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
	srv  *localmysql.Server
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
	return NewDatabase(t, shared.srv)
}

// Shop returns a fresh database with PrestaShop's core tables, the module's
// tables and sfsync's migrations (shopfixture.Install), and its store.
func Shop(t testing.TB) (*DB, *prestashop.Store, *shopfixture.Fixture) {
	t.Helper()
	d := MySQL(t)
	if err := shopfixture.Install(context.Background(), d.DB, "ps_"); err != nil {
		t.Fatalf("install shop fixture: %v", err)
	}
	return d, prestashop.New(d.DB, "ps_"), shopfixture.New(d.DB, "ps_")
}

// NewDatabase creates a fresh database on srv, dropped when the test ends.
func NewDatabase(t testing.TB, srv *localmysql.Server) *DB {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	dsn, err := srv.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if dsn, err = strictDSN(dsn); err != nil {
		t.Fatal(err)
	}
	d := &DB{Name: name, DSN: dsn}
	if d.DB, err = sql.Open("mysql", dsn); err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		d.DB.Close()
		_ = srv.DropDatabase(context.Background(), name)
	})
	return d
}

// strictDSN sets localmysql.StrictSQLMode on every connection of dsn, so
// that the tests run in strict mode whatever the server's default.
func strictDSN(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("test database DSN: %w", err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = "'" + localmysql.StrictSQLMode + "'"
	return cfg.FormatDSN(), nil
}

func startShared() (*localmysql.Server, error) {
	if dsn := os.Getenv("TEST_MYSQL_DSN"); dsn != "" {
		srv, err := localmysql.FromDSN("TEST_MYSQL_DSN", dsn, func() {})
		if err != nil {
			return nil, err
		}
		return srv, srv.WaitReady(10 * time.Second)
	}
	if srv, err := startContainer(); err == nil {
		return srv, nil
	} else if !errors.Is(err, errNoDocker) {
		return nil, err
	}
	srv, err := localmysql.Start()
	if errors.Is(err, localmysql.ErrNoBinary) {
		return nil, fmt.Errorf("%w; no Docker engine either, and TEST_MYSQL_DSN is unset", err)
	}
	return srv, err
}

func stopShared() {
	if shared.srv != nil {
		shared.srv.Close()
	}
}

var errNoDocker = errors.New("no docker engine")

func startContainer() (*localmysql.Server, error) {
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
	srv, err := localmysql.FromDSN("testcontainers "+MySQLImage, dsn, func() { _ = c.Terminate(context.Background()) })
	if err != nil {
		_ = c.Terminate(context.Background())
		return nil, err
	}
	return srv, srv.WaitReady(time.Minute)
}

// StartPrivateMySQL starts a private mariadbd or mysqld for this test alone,
// which the test may Stop and Start (e.g. to see readiness fail).
func StartPrivateMySQL(t testing.TB) *localmysql.Server {
	t.Helper()
	srv, err := localmysql.Start()
	if err != nil {
		unavailable(t, "private mysql: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}
