package detector

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
	"github.com/sfsync/sfsync/pkg/targets"
)

func TestRouteDecidesWhatEachRowBecomes(t *testing.T) {
	const (
		processing, shipped, canceled, delivered uint32 = 3, 4, 6, 5
		delay                                           = 5 * time.Minute
	)
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	mapping := prestashop.Mapping{prestashop.OpShip: {shipped}, prestashop.OpCancel: {canceled}}
	hook := targets.ShopMapping{Names: map[uint32]string{shipped: "shipped", delivered: "delivered"}, Shipping: shipped}
	syncing := &shoppolicy.Shop{ID: 1, Settings: prestashop.ShopSettings{SyncEnabled: true, Mapping: mapping}, Delay: delay, Hook: hook}
	guarded := &shoppolicy.Shop{ID: 2, Settings: syncing.Settings, Delay: delay, Hook: hook,
		Block: prestashop.SyncBlock{Reason: "another module sends order updates"}}
	disabled := &shoppolicy.Shop{ID: 3, Settings: prestashop.ShopSettings{Mapping: mapping}, Delay: delay}
	broken := &shoppolicy.Shop{ID: 4, ConfigErr: errors.New("SHOPPINGFEED_SHIPPED_ORDERS is not a JSON list"), Delay: delay}
	shops := map[uint32]*shoppolicy.Shop{1: syncing, 2: guarded, 3: disabled, 4: broken}
	row := func(id uint64, shop, state uint32, sf bool) prestashop.HistoryRow {
		return prestashop.HistoryRow{ID: id, OrderID: uint32(100 + id), StateID: state, At: at, ShopID: shop, SF: sf}
	}
	sfOnly := targets.Config{Targets: "shoppingfeed"}
	both := targets.Config{Targets: "shoppingfeed,webhook", Hook: targets.WebhookConfig{Orders: "shoppingfeed"}}
	allHook := targets.Config{Targets: "webhook", Hook: targets.WebhookConfig{Orders: "all"}}
	type want struct {
		id        uint64
		op        string
		mapped    bool
		notBefore time.Time
		target    string
	}
	tests := []struct {
		name    string
		rows    []prestashop.HistoryRow
		targets targets.Config
		want    []want
	}{
		{"a cancel is a task due now", []prestashop.HistoryRow{row(1, 1, canceled, true)}, sfOnly,
			[]want{{1, "cancel", true, at, ""}}},
		{"a shipment waits out the delay", []prestashop.HistoryRow{row(1, 1, shipped, true)}, sfOnly,
			[]want{{1, "ship", true, at.Add(delay), ""}}},
		{"an unmapped state is published without a task", []prestashop.HistoryRow{row(1, 1, processing, true)}, sfOnly,
			[]want{{1, "none", false, at, ""}}},
		{"an order of no known shop is skipped", []prestashop.HistoryRow{row(1, 0, canceled, true)}, sfOnly, nil},
		{"an order not from Shopping Feed is skipped", []prestashop.HistoryRow{row(1, 1, canceled, false)}, sfOnly, nil},
		{"the conflict guard stops Shopping Feed", []prestashop.HistoryRow{row(1, 2, canceled, true)}, sfOnly, nil},
		{"the sync switch off stops Shopping Feed", []prestashop.HistoryRow{row(1, 3, canceled, true)}, sfOnly, nil},
		{"a mapping that cannot be read keeps a waiting task", []prestashop.HistoryRow{row(1, 4, processing, true)}, sfOnly,
			[]want{{1, "unknown", true, at.Add(delay), ""}}},
		{"both targets: a shipment goes to each", []prestashop.HistoryRow{row(1, 1, shipped, true)}, both,
			[]want{{1, "ship", true, at.Add(delay), ""}, {1, "shipped", true, at.Add(delay), targets.Webhook}}},
		{"the webhook ignores the guard", []prestashop.HistoryRow{row(1, 2, delivered, true)}, both,
			[]want{{1, "delivered", true, at, targets.Webhook}}},
		{"the webhook skips a state without a name", []prestashop.HistoryRow{row(1, 1, processing, true)}, both,
			[]want{{1, "none", false, at, ""}}},
		{"the webhook with all orders takes a shop order", []prestashop.HistoryRow{row(1, 1, delivered, false)}, allHook,
			[]want{{1, "delivered", true, at, targets.Webhook}}},
		{"rows keep their order", []prestashop.HistoryRow{row(1, 1, shipped, true), row(2, 1, canceled, true), row(3, 2, canceled, true)}, sfOnly,
			[]want{{1, "ship", true, at.Add(delay), ""}, {2, "cancel", true, at, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []want
			for _, r := range route(tt.rows, shops, tt.targets) {
				got = append(got, want{r.row.ID, r.op, r.mapped, r.notBefore, r.target})
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Fatalf("route (-want +got):\n%s", diff)
			}
		})
	}
}
