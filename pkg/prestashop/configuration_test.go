package prestashop_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestParseStateList(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    []uint32
		wantErr bool
	}{
		{"strings as the module saves them", `["4","5"]`, []uint32{4, 5}, false},
		{"numbers", `[4, 5, 12]`, []uint32{4, 5, 12}, false},
		{"mixed", `["4", 5]`, []uint32{4, 5}, false},
		{"empty array", `[]`, []uint32{}, false},
		{"empty value", ``, nil, false},
		{"null", `null`, nil, false},
		{"not json", `4,5`, nil, true},
		{"object", `{"a":4}`, nil, true},
		{"word in list", `["4","shipped"]`, nil, true},
		{"negative", `[-4]`, nil, true},
		{"zero", `["0"]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := prestashop.ParseStateList(tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && len(got)+len(tt.want) > 0 {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Fatalf("(-want +got)\n%s", diff)
				}
			}
		})
	}
}

func TestMappingResolvePrecedence(t *testing.T) {
	m := prestashop.Mapping{
		prestashop.OpShip:    {4, 5},
		prestashop.OpCancel:  {6, 5},
		prestashop.OpRefund:  {7, 6},
		prestashop.OpDeliver: {5, 20},
	}
	tests := []struct {
		state uint32
		want  prestashop.Operation
		ok    bool
	}{
		{4, prestashop.OpShip, true},
		{5, prestashop.OpShip, true}, // in ship, cancel and deliver: ship wins
		{6, prestashop.OpCancel, true},
		{7, prestashop.OpRefund, true},
		{20, prestashop.OpDeliver, true},
		{2, "", false},
	}
	for _, tt := range tests {
		got, ok := m.Resolve(tt.state)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Resolve(%d) = %q, %v; want %q, %v", tt.state, got, ok, tt.want, tt.ok)
		}
	}
}

func TestConfigLookupOrder(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	group2, err := fx.CreateShopGroup(ctx, "Group 2")
	if err != nil {
		t.Fatal(err)
	}
	shop2, err := fx.CreateShop(ctx, group2, "Shop 2")
	if err != nil {
		t.Fatal(err)
	}
	shop3, err := fx.CreateShop(ctx, group2, "Shop 3")
	if err != nil {
		t.Fatal(err)
	}
	const key = "SHOPPINGFEED_ORDER_STATUS_TIME_SHIFT"
	must(t, fx.SetConfig(ctx, shopfixture.Global, key, "global"))
	must(t, fx.SetConfig(ctx, shopfixture.GroupScope(group2), key, "group"))
	must(t, fx.SetConfig(ctx, shopfixture.ShopScope(shop2), key, "shop"))
	must(t, fx.SetConfig(ctx, shopfixture.Global, "ONLY_GLOBAL", "g"))

	tests := []struct {
		name   string
		shop   uint32
		key    string
		want   string
		wantOK bool
	}{
		{"shop row wins", shop2, key, "shop", true},
		{"group row when the shop has none", shop3, key, "group", true},
		{"global row when neither", 1, key, "global", true},
		{"global only", shop2, "ONLY_GLOBAL", "g", true},
		{"absent everywhere", shop2, "NOPE", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := store.ConfigValue(ctx, tt.shop, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("ConfigValue = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSettingsMalformedListNamesKeyAndShop(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	must(t, fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyCancelled, `["6", "cancelled"]`))
	_, err := store.Settings(ctx, 1)
	var ce *prestashop.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	if ce.Key != prestashop.KeyCancelled || ce.ShopID != 1 {
		t.Fatalf("error names %s of shop %d", ce.Key, ce.ShopID)
	}
	for _, want := range []string{"shop 1", prestashop.KeyCancelled} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("message %q lacks %q", err, want)
		}
	}
}

func TestSettingsBothListForms(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	must(t, fx.SetConfig(ctx, shopfixture.Global, prestashop.KeyShipped, `["4","5"]`))
	must(t, fx.SetConfig(ctx, shopfixture.Global, prestashop.KeyCancelled, `[6]`))
	must(t, fx.SetConfig(ctx, shopfixture.Global, prestashop.KeyMaxOrders, `50`))
	st, err := store.Settings(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := prestashop.Mapping{prestashop.OpShip: {4, 5}, prestashop.OpCancel: {6}, prestashop.OpRefund: nil, prestashop.OpDeliver: nil}
	if diff := cmp.Diff(want, st.Mapping); diff != "" {
		t.Fatalf("mapping (-want +got)\n%s", diff)
	}
	if !st.SyncEnabled || st.TimeShiftMinutes != 5 || st.MaxOrders != 50 {
		t.Fatalf("settings %+v", st)
	}
	must(t, fx.SetConfig(ctx, shopfixture.Global, prestashop.KeyMaxOrders, `500`))
	if _, err := store.Settings(ctx, 1); err == nil || !strings.Contains(err.Error(), prestashop.KeyMaxOrders) {
		t.Fatalf("MAX_ORDERS 500: err = %v, want one naming the key", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
