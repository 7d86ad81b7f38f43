package shopfixture

import (
	"context"
	"strconv"

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
