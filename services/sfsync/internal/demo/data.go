// Package demo seeds demonstration data and plays `make demo`: a merchant's
// day on two shops, end to end through the sandbox.
package demo

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// Tokens and stores of the demo data; the sandbox and docker-compose use
// the same.
const (
	Token1 = "demo-token-1"
	Store1 = "1001"
	Token2 = "demo-token-2"
	Store2 = "1002"
)

// Data is what Seed created.
type Data struct {
	Shop1, Shop2 shopfixture.SFShop
	// Orders of shop 1 and shop 2, in creation order.
	Orders1, Orders2 []Order
}

// Order is a demo order.
type Order struct {
	ID      uint32
	SFID    int64
	Channel string
}

// Seed creates PrestaShop's tables, sfsync's, and the demo data: 2 shops,
// 3 carriers, 50 Shopping Feed orders (40 in shop 1, 10 in shop 2), shop
// 2 with the legacy shoppingfluxexport module configured to sync order
// states (so the conflict guard shows). A database that already has orders
// is left alone (ok false).
func Seed(ctx context.Context, db *sql.DB, prefix string) (Data, bool, error) {
	if err := shopfixture.InstallCore(ctx, db, prefix); err != nil {
		return Data{}, false, err
	}
	if err := prestashop.New(db, prefix).Migrate(ctx); err != nil {
		return Data{}, false, err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM `"+prefix+"orders`").Scan(&n); err != nil {
		return Data{}, false, err
	}
	if n > 0 {
		return Data{}, false, nil
	}
	fx := shopfixture.New(db, prefix)
	shop2, err := fx.CreateShop(ctx, 1, "Shop 2")
	if err != nil {
		return Data{}, false, err
	}
	var d Data
	if d.Shop1, err = fx.EnableShoppingFeed(ctx, 1, Token1, Store1); err != nil {
		return Data{}, false, err
	}
	if d.Shop2, err = fx.EnableShoppingFeed(ctx, shop2, Token2, Store2); err != nil {
		return Data{}, false, err
	}
	// Shop 1 maps Delivered too (SHOPPINGFEED_DELIVERED_ORDERS), as many
	// merchants do: Shipped then Delivered within the delay sends ship,
	// then deliver.
	if err := fx.SetStateList(ctx, shopfixture.ShopScope(1), prestashop.KeyDelivered, shopfixture.StateDelivered); err != nil {
		return Data{}, false, err
	}
	if _, err := fx.CreateCarrier(ctx, "Chronopost", "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=@"); err != nil {
		return Data{}, false, err
	}
	if err := fx.SetConfig(ctx, shopfixture.Global, prestashop.KeyShopEmail, "merchant@demo.test"); err != nil {
		return Data{}, false, err
	}
	// Shop 2 still runs the legacy module with order sync ticked.
	if err := fx.EnableModuleForShops(ctx, prestashop.ModuleLegacy, shop2); err != nil {
		return Data{}, false, err
	}
	if err := fx.SetConfig(ctx, shopfixture.ShopScope(shop2), prestashop.KeyLegacyShipped, "checked"); err != nil {
		return Data{}, false, err
	}
	for _, p := range seededOrders() {
		shop := d.Shop1
		if p.store == Store2 {
			shop = d.Shop2
		}
		id, err := fx.CreateSFOrder(ctx, shop, p.sfID, p.channel)
		if err != nil {
			return Data{}, false, err
		}
		o := Order{ID: id, SFID: p.sfID, Channel: p.channel}
		if p.store == Store1 {
			d.Orders1 = append(d.Orders1, o)
		} else {
			d.Orders2 = append(d.Orders2, o)
		}
	}
	// Shop 1 sends partial refunds (the module's "allow partial refund"),
	// and order #7 has two products: the demo refunds one of them.
	if err := fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyPartialRefund, "1"); err != nil {
		return Data{}, false, err
	}
	for _, p := range []struct {
		ref string
		qty int
	}{{"MUG-BLUE", 2}, {"TSHIRT-M", 1}} {
		id, err := fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: p.ref})
		if err != nil {
			return Data{}, false, err
		}
		if _, err := fx.AddOrderLine(ctx, d.Orders1[6].ID, id, p.qty); err != nil {
			return Data{}, false, err
		}
	}
	return d, true, nil
}

// plannedOrder is a Shopping Feed order that Seed creates.
type plannedOrder struct {
	sfID    int64
	channel string
	store   string
}

// seededOrders are the Shopping Feed orders Seed creates, in creation
// order: 40 in store 1 (shop 1), then 10 in store 2.
func seededOrders() []plannedOrder {
	channels := []string{"amazon", "cdiscount", "fnac", "manomano"}
	var out []plannedOrder
	for i := 0; i < 50; i++ {
		store := Store1
		if i >= 40 {
			store = Store2
		}
		out = append(out, plannedOrder{sfID: int64(10001 + i), channel: channels[i%len(channels)], store: store})
	}
	return out
}

// SandboxOrders is SANDBOX_ORDERS for a sandbox that plays Shopping Feed
// for the seeded shops: each store knows its orders and their channels,
// as Shopping Feed does (that is how a refund of a cdiscount order sent by
// id fails).
func SandboxOrders() string {
	byStore := map[string][]string{}
	for _, p := range seededOrders() {
		byStore[p.store] = append(byStore[p.store], fmt.Sprintf("%d@%s#%s", p.sfID, p.channel, reference(p.sfID)))
	}
	return Store1 + ":" + strings.Join(byStore[Store1], "|") + "," + Store2 + ":" + strings.Join(byStore[Store2], "|")
}

func reference(sfID int64) string { return fmt.Sprintf("MP-%d", sfID) }

// LoadData reads back what Seed created in a database it seeded before
// (the seed container of docker-compose.yml).
func LoadData(ctx context.Context, db *sql.DB, prefix string) (Data, error) {
	rows, err := db.QueryContext(ctx, "SELECT o.id_order, o.id_shop, s.id_internal_shoppingfeed, s.name_marketplace FROM `"+prefix+"orders` o JOIN `"+
		prefix+"shoppingfeed_order` s ON s.id_order = o.id_order ORDER BY o.id_order")
	if err != nil {
		return Data{}, fmt.Errorf("load the seeded orders: %w", err)
	}
	defer rows.Close()
	plan := map[int64]plannedOrder{}
	for _, p := range seededOrders() {
		plan[p.sfID] = p
	}
	var d Data
	for rows.Next() {
		var o Order
		var shop uint32
		var sfID sql.NullInt64
		if err := rows.Scan(&o.ID, &shop, &sfID, &o.Channel); err != nil {
			return Data{}, fmt.Errorf("load the seeded orders: %w", err)
		}
		o.SFID = sfID.Int64
		p, ok := plan[o.SFID]
		if !ok || p.channel != o.Channel {
			return Data{}, fmt.Errorf("order %d (Shopping Feed %d on %s) is not one that the seed creates", o.ID, o.SFID, o.Channel)
		}
		if p.store == Store1 {
			d.Shop1.ShopID = shop
			d.Orders1 = append(d.Orders1, o)
		} else {
			d.Shop2.ShopID = shop
			d.Orders2 = append(d.Orders2, o)
		}
	}
	if err := rows.Err(); err != nil {
		return Data{}, fmt.Errorf("load the seeded orders: %w", err)
	}
	if n := len(d.Orders1) + len(d.Orders2); n != len(plan) {
		return Data{}, fmt.Errorf("the database holds %d Shopping Feed orders, the seed creates %d: not a freshly seeded database", n, len(plan))
	}
	return d, nil
}

// Describe prints what Seed created.
func (d Data) Describe() string {
	return fmt.Sprintf("2 shops (shop %d with store %s, shop %d with store %s and the legacy module), 3 carriers, %d Shopping Feed orders",
		d.Shop1.ShopID, Store1, d.Shop2.ShopID, Store2, len(d.Orders1)+len(d.Orders2))
}
