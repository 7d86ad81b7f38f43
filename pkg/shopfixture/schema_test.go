package shopfixture_test

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"testing"

	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The facts of the real tables that hid bugs when the fixtures differed:
// each row is one column as PrestaShop 8 or module 2.3.0 creates it.
func TestTablesAreTheRealOnes(t *testing.T) {
	d := testenv.MySQL(t)
	ctx := context.Background()
	if err := shopfixture.Install(ctx, d.DB, "ps_"); err != nil {
		t.Fatal(err)
	}
	// Integer display widths are left out: MySQL 8 shows none, MariaDB does.
	width := regexp.MustCompile(`int\(\d+\)`)
	for _, c := range []struct{ table, column, typ, nullable string }{
		{"shoppingfeed_processlogger", "object_name", "varchar(100)", "NO"},
		{"shoppingfeed_processlogger", "id_session", "varchar(255)", "YES"},
		{"shoppingfeed_token", "shoppingfeed_store_id", "int unsigned", "NO"},
		{"shoppingfeed_token", "content", "varchar(255)", "NO"},
		{"shoppingfeed_token", "feed_key", "varchar(50)", "NO"},
		{"shoppingfeed_order", "id_shoppingfeed_token", "int", "NO"},
		{"shoppingfeed_order", "payment_method", "varchar(50)", "NO"},
		{"shoppingfeed_order", "failed_ticket", "int", "YES"},
		{"orders", "invoice_date", "datetime", "NO"},
		{"orders", "delivery_date", "datetime", "NO"},
		{"shop", "id_shop", "int", "NO"},
		{"shop", "theme_name", "varchar(255)", "NO"},
	} {
		var typ, nullable string
		var def sql.NullString
		err := d.DB.QueryRow("SELECT COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?",
			"ps_"+c.table, c.column).Scan(&typ, &nullable, &def)
		if err != nil {
			t.Errorf("%s.%s: %v", c.table, c.column, err)
			continue
		}
		if got := width.ReplaceAllString(typ, "int"); got != c.typ {
			t.Errorf("%s.%s is %s, want %s", c.table, c.column, typ, c.typ)
		}
		if nullable != c.nullable {
			t.Errorf("%s.%s: nullable %s, want %s", c.table, c.column, nullable, c.nullable)
		}
		if c.nullable == "NO" && def.Valid {
			t.Errorf("%s.%s has default %q; the real column has none, so every insert must fill it", c.table, c.column, def.String)
		}
	}
	for _, table := range []string{"shoppingfeed_order", "shoppingfeed_token", "shoppingfeed_task_order", "shoppingfeed_processlogger"} {
		var coll string
		if err := d.DB.QueryRow("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", "ps_"+table).Scan(&coll); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(coll, "utf8_") && !strings.HasPrefix(coll, "utf8mb3_") {
			t.Errorf("%s is %s, want the module's 3-byte utf8", table, coll)
		}
	}
	var ref string
	if err := d.DB.QueryRow("SELECT REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'ps_shoppingfeed_token'").Scan(&ref); err != nil || ref != "ps_currency" {
		t.Errorf("token foreign key: %q %v, want one to ps_currency", ref, err)
	}
	var unique string
	if err := d.DB.QueryRow("SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ps_shoppingfeed_token' AND NON_UNIQUE = 0 AND INDEX_NAME <> 'PRIMARY'").Scan(&unique); err != nil || unique != "content,feed_key" {
		t.Errorf("token unique key on %q %v, want content,feed_key", unique, err)
	}
	// Installing again (the demo does, on an existing database) changes nothing.
	if err := shopfixture.Install(ctx, d.DB, "ps_"); err != nil {
		t.Fatal(err)
	}
	var fks int
	if err := d.DB.QueryRow("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = 'ps_shoppingfeed_token'").Scan(&fks); err != nil || fks != 1 {
		t.Errorf("%d foreign keys on the token table after a second install (%v), want 1", fks, err)
	}
}
