package shopfixture

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// SFShop is a shop set up the way a merchant using the module has it.
type SFShop struct {
	ShopID    uint32
	TokenID   uint32
	CarrierID uint32
	StoreID   string
	Token     string
}

// EnableShoppingFeed sets a shop up as a merchant using the official module
// has it: the shoppingfeed module installed, stock states mapped (Shipped →
// ship, Canceled → cancel, Refunded → refund; no deliver list), a token for
// storeID and a carrier with a tracking URL.
func (f *Fixture) EnableShoppingFeed(ctx context.Context, shopID uint32, token, storeID string) (SFShop, error) {
	if err := f.InstallModule(ctx, prestashop.ModuleOfficial, true); err != nil {
		return SFShop{}, err
	}
	sc := ShopScope(shopID)
	for _, l := range []struct {
		key   string
		state uint32
	}{{prestashop.KeyShipped, StateShipped}, {prestashop.KeyCancelled, StateCanceled}, {prestashop.KeyRefunded, StateRefunded}} {
		if err := f.SetStateList(ctx, sc, l.key, l.state); err != nil {
			return SFShop{}, err
		}
	}
	if err := f.SetConfig(ctx, sc, prestashop.KeyDelivered, "[]"); err != nil {
		return SFShop{}, err
	}
	tok, err := f.CreateToken(ctx, shopID, token, storeID)
	if err != nil {
		return SFShop{}, err
	}
	carrier, err := f.CreateCarrier(ctx, "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code=@")
	if err != nil {
		return SFShop{}, err
	}
	return SFShop{ShopID: shopID, TokenID: tok, CarrierID: carrier, StoreID: storeID, Token: token}, nil
}

// CreateSFOrder creates a Shopping Feed order of the shop with SF order id
// sfID (0: the order is known by its marketplace reference only).
func (f *Fixture) CreateSFOrder(ctx context.Context, s SFShop, sfID int64, channel string) (uint32, error) {
	link := &SFLink{MarketplaceRef: "MP-" + itoa(sfID), Channel: channel, TokenID: s.TokenID}
	if sfID != 0 {
		link.InternalID = itoa(sfID)
	}
	return f.CreateOrder(ctx, OrderSpec{ShopID: s.ShopID, CarrierID: s.CarrierID, SF: link})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// BulkSFOrders creates n Shopping Feed orders of the shop in state, with
// multi-row inserts (CreateSFOrder one by one is too slow for benchmarks of
// thousands of orders). SF order ids are sfIDBase plus the order id. It
// writes no order_history row. It returns the order ids and SF ids.
func (f *Fixture) BulkSFOrders(ctx context.Context, s SFShop, n int, state uint32, sfIDBase int64) ([]uint32, []int64, error) {
	var maxID uint32
	if err := f.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id_order), 0) FROM "+f.t("orders")).Scan(&maxID); err != nil {
		return nil, nil, fmt.Errorf("bulk orders: %w", err)
	}
	var group uint32
	if err := f.db.QueryRowContext(ctx, "SELECT id_shop_group FROM "+f.t("shop")+" WHERE id_shop = ?", s.ShopID).Scan(&group); err != nil {
		return nil, nil, fmt.Errorf("bulk orders in shop %d: %w", s.ShopID, err)
	}
	ids := make([]uint32, 0, n)
	sfIDs := make([]int64, 0, n)
	for start := 0; start < n; start += 2000 {
		cnt := min(2000, n-start)
		o := make([]string, 0, cnt)
		sf := make([]string, 0, cnt)
		for i := range cnt {
			id := int64(maxID) + 1 + int64(start+i)
			o = append(o, fmt.Sprintf("(%d, 'R%d', %d, %d, %d, 1, 1, 1, 1, 1, 1, %d, 'sfpayment', 'sfpayment', 1, %s, %s, NOW(), NOW())", id, id, group, s.ShopID, s.CarrierID, state, noDate, noDate))
			sf = append(sf, fmt.Sprintf("('%d', 'MP%d', 'amazon', %d, 'sfpayment', %d, NOW(), NOW())", sfIDBase+id, id, id, s.TokenID))
			ids, sfIDs = append(ids, uint32(id)), append(sfIDs, sfIDBase+id)
		}
		if _, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("orders")+` (id_order, reference, id_shop_group, id_shop, id_carrier, id_lang, id_customer, id_cart,
			id_currency, id_address_delivery, id_address_invoice, current_state, payment, module, valid, invoice_date, delivery_date, date_add, date_upd) VALUES `+strings.Join(o, ",")); err != nil {
			return nil, nil, fmt.Errorf("bulk orders: %w", err)
		}
		if _, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("shoppingfeed_order")+` (id_internal_shoppingfeed, id_order_marketplace, name_marketplace, id_order,
			payment_method, id_shoppingfeed_token, date_add, date_upd) VALUES `+strings.Join(sf, ",")); err != nil {
			return nil, nil, fmt.Errorf("bulk orders: %w", err)
		}
	}
	return ids, sfIDs, nil
}
