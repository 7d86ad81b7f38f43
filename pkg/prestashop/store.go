package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/sfsync/sfsync/pkg/config"
)

// Config is the database part of a service's configuration.
type Config struct {
	DSN    config.Secret `env:"MYSQL_DSN, required"`
	Prefix string        `env:"DB_PREFIX, default=ps_"`
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]{0,32}$`)

// Validate checks the prefix and the DSN's syntax without revealing it.
func (c Config) Validate() error {
	if !prefixRE.MatchString(c.Prefix) {
		return config.Invalid("DB_PREFIX", "%q may hold only letters, digits and _", c.Prefix)
	}
	if _, err := mysql.ParseDSN(c.DSN.Reveal()); err != nil {
		return config.Invalid("MYSQL_DSN", "not a valid go-sql-driver DSN (user:pass@tcp(host:3306)/db)")
	}
	return nil
}

// ErrNotFound is returned when a row the caller asked for does not exist.
var ErrNotFound = errors.New("not found")

// Open connects to the shop database. DATETIME values are read as wall-clock
// times labelled UTC: PrestaShop stores local time without a zone, and sfsync
// compares them only with each other and with the database's NOW().
func Open(ctx context.Context, c Config) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(c.DSN.Reveal())
	if err != nil {
		return nil, config.Invalid("MYSQL_DSN", "not a valid go-sql-driver DSN")
	}
	mc.ParseTime = true
	mc.Loc = time.UTC
	if mc.Timeout == 0 {
		mc.Timeout = 5 * time.Second
	}
	if mc.ReadTimeout == 0 {
		mc.ReadTimeout = 30 * time.Second
	}
	if mc.WriteTimeout == 0 {
		mc.WriteTimeout = 30 * time.Second
	}
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	if _, ok := mc.Params["charset"]; !ok {
		mc.Params["charset"] = "utf8mb4"
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxLifetime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping database %s at %s: %w", mc.DBName, mc.Addr, err)
	}
	return db, nil
}

// Store reads and writes one shop database with one table prefix.
type Store struct {
	db     *sql.DB
	prefix string

	// Whether shoppingfeed_order has failed_ticket, once known.
	failedTicketMu    sync.Mutex
	failedTicketKnown bool
	failedTicket      bool
}

// New returns a store over db; prefix is PrestaShop's table prefix (ps_).
func New(db *sql.DB, prefix string) *Store { return &Store{db: db, prefix: prefix} }

// DB is the underlying pool.
func (s *Store) DB() *sql.DB { return s.db }

// Prefix is the table prefix.
func (s *Store) Prefix() string { return s.prefix }

// T returns the quoted name of a table.
func (s *Store) T(name string) string { return "`" + s.prefix + name + "`" }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Now returns the database's clock, the clock PrestaShop's dates are in.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.db.QueryRowContext(ctx, "SELECT NOW(3)").Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read database clock: %w", err)
	}
	return now, nil
}

// DatabaseName returns the name of the connected database (the shop's).
func (s *Store) DatabaseName(ctx context.Context) (string, error) {
	var name sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&name); err != nil {
		return "", fmt.Errorf("read database name: %w", err)
	}
	return name.String, nil
}
