package testenv_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestEachTestGetsItsOwnDatabase(t *testing.T) {
	a, b := testenv.MySQL(t), testenv.MySQL(t)
	if a.Name == b.Name {
		t.Fatalf("two tests share database %s", a.Name)
	}
	if _, err := a.DB.Exec("CREATE TABLE x (id INT)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.DB.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'x'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table created in one test's database is visible in another's")
	}
}

func TestBrokerRestartKeepsOrWipesTheStore(t *testing.T) {
	ctx := context.Background()
	b := testenv.NATS(t)
	_, js := b.Connect(t)
	if _, err := js.CreateKeyValue(ctx, kvConfig()); err != nil {
		t.Fatal(err)
	}
	b.Restart(false)
	_, js = b.Connect(t)
	if _, err := js.KeyValue(ctx, "probe"); err != nil {
		t.Fatalf("bucket gone after a plain restart: %v", err)
	}
	b.Restart(true)
	_, js = b.Connect(t)
	if _, err := js.KeyValue(ctx, "probe"); err == nil {
		t.Fatal("bucket survived a wiped restart")
	}
}

func kvConfig() jetstream.KeyValueConfig { return jetstream.KeyValueConfig{Bucket: "probe"} }

// The tests run in strict SQL mode: a write that does not fit its column
// fails, as on a MySQL 8 server with its defaults.
func TestDatabasesAreStrict(t *testing.T) {
	d := testenv.MySQL(t)
	var mode string
	if err := d.DB.QueryRow("SELECT @@SESSION.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STRICT_TRANS_TABLES", "NO_ZERO_DATE"} {
		if !strings.Contains(mode, want) {
			t.Errorf("sql_mode %q lacks %s", mode, want)
		}
	}
	if _, err := d.DB.Exec("CREATE TABLE s (v VARCHAR(3) NOT NULL) CHARSET=utf8"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.Exec("INSERT INTO s (v) VALUES ('abcd')"); err == nil {
		t.Error("a value longer than its column was stored")
	}
	if _, err := d.DB.Exec("INSERT INTO s (v) VALUES (NULL)"); err == nil {
		t.Error("NULL was stored in a NOT NULL column")
	}
}
