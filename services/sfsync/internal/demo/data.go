// Package demo seeds demonstration data and plays `make demo`: a merchant's
// day on two shops, end to end through the sandbox.
package demo

import (
	"context"
	"database/sql"
	"fmt"

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
	channels := []string{"amazon", "cdiscount", "fnac", "manomano"}
	for i := 0; i < 50; i++ {
		shop := d.Shop1
		if i >= 40 {
			shop = d.Shop2
		}
		sfID := int64(10001 + i)
		ch := channels[i%len(channels)]
		id, err := fx.CreateSFOrder(ctx, shop, sfID, ch)
		if err != nil {
			return Data{}, false, err
		}
		o := Order{ID: id, SFID: sfID, Channel: ch}
		if i < 40 {
			d.Orders1 = append(d.Orders1, o)
		} else {
			d.Orders2 = append(d.Orders2, o)
		}
	}
	return d, true, nil
}

// Describe prints what Seed created.
func (d Data) Describe() string {
	return fmt.Sprintf("2 shops (shop %d with store %s, shop %d with store %s and the legacy module), 3 carriers, %d Shopping Feed orders",
		d.Shop1.ShopID, Store1, d.Shop2.ShopID, Store2, len(d.Orders1)+len(d.Orders2))
}
