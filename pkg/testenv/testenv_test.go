package testenv_test

import (
	"context"
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
