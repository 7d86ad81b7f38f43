package demo

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// What Seed created is what LoadData reads back (the compose story reads
// the seed container's data this way), and SANDBOX_ORDERS gives each store
// exactly its seeded orders with their channels.
func TestLoadDataAndSandboxOrdersMatchSeed(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	seeded, fresh, err := Seed(ctx, db.DB, "ps_")
	if err != nil || !fresh {
		t.Fatalf("seed: fresh %v, %v", fresh, err)
	}
	loaded, err := LoadData(ctx, db.DB, "ps_")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(seeded.Orders1, loaded.Orders1); d != "" {
		t.Errorf("orders of shop 1 (-seeded +loaded):\n%s", d)
	}
	if d := cmp.Diff(seeded.Orders2, loaded.Orders2); d != "" {
		t.Errorf("orders of shop 2 (-seeded +loaded):\n%s", d)
	}
	if seeded.Shop1.ShopID != loaded.Shop1.ShopID || seeded.Shop2.ShopID != loaded.Shop2.ShopID {
		t.Errorf("shops: seeded %d, %d; loaded %d, %d", seeded.Shop1.ShopID, seeded.Shop2.ShopID, loaded.Shop1.ShopID, loaded.Shop2.ShopID)
	}

	var orders sfsandbox.Orders
	if err := orders.UnmarshalText([]byte(SandboxOrders())); err != nil {
		t.Fatalf("SandboxOrders does not parse as SANDBOX_ORDERS: %v", err)
	}
	want := sfsandbox.Orders{}
	for store, list := range map[int64][]Order{1001: seeded.Orders1, 1002: seeded.Orders2} {
		for _, o := range list {
			want[store] = append(want[store], sfsandbox.Order{ID: o.SFID, Reference: reference(o.SFID), ChannelName: o.Channel})
		}
	}
	if d := cmp.Diff(want, orders); d != "" {
		t.Errorf("SANDBOX_ORDERS (-seeded +SandboxOrders):\n%s", d)
	}

	// A database that holds other orders is not the seed's.
	if _, err := db.DB.ExecContext(ctx, "UPDATE ps_shoppingfeed_order SET name_marketplace = 'ebay' WHERE id_internal_shoppingfeed = '10003'"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadData(ctx, db.DB, "ps_"); err == nil {
		t.Error("LoadData accepted an order the seed does not create")
	}
}
