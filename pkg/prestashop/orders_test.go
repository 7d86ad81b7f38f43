package prestashop_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestTrackingLink(t *testing.T) {
	tests := []struct {
		name string
		tr   prestashop.Tracking
		want string
	}{
		{"placeholder", prestashop.Tracking{CarrierURL: "https://track.example/?n=@", Number: "AB1"}, "https://track.example/?n=AB1"},
		{"doubled scheme", prestashop.Tracking{CarrierURL: "http://http://track.example/@", Number: "Z"}, "http://track.example/Z"},
		{"no number", prestashop.Tracking{CarrierURL: "https://x/@"}, ""},
		{"no url", prestashop.Tracking{Number: "Z"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tr.Link(); got != tt.want {
				t.Fatalf("Link() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadOrderTrackingAndLinks(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	carrier, err := fx.CreateCarrier(ctx, "Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code=@")
	must(t, err)
	tok, err := fx.CreateToken(ctx, 1, "secret-token", "1001")
	must(t, err)
	id, err := fx.CreateOrder(ctx, shopfixture.OrderSpec{CarrierID: carrier, SF: &shopfixture.SFLink{InternalID: "987", MarketplaceRef: "AMZ-1", Channel: "amazon", TokenID: tok}})
	must(t, err)
	hist, err := fx.ChangeState(ctx, id, shopfixture.StateShipped)
	must(t, err)
	if hist == 0 {
		t.Fatal("ChangeState returned no history id")
	}
	must(t, fx.SetTracking(ctx, id, "6A123"))

	o, err := store.Order(ctx, id)
	must(t, err)
	if o.CurrentState != shopfixture.StateShipped || o.ShopID != 1 || o.Reference == "" {
		t.Fatalf("order %+v", o)
	}
	st, err := store.OrderState(ctx, o.CurrentState, 1)
	must(t, err)
	if !st.Shipped || st.Name != "Shipped" {
		t.Fatalf("state %+v", st)
	}
	tr, err := store.Tracking(ctx, id)
	must(t, err)
	if tr.CarrierName != "Colissimo" || tr.Number != "6A123" || tr.Link() != "https://www.laposte.fr/outils/suivre-vos-envois?code=6A123" {
		t.Fatalf("tracking %+v link %q", tr, tr.Link())
	}
	sf, err := store.SFOrder(ctx, id)
	must(t, err)
	if sf.InternalID != "987" || sf.MarketplaceRef != "AMZ-1" || sf.Channel != "amazon" || sf.TokenID != tok {
		t.Fatalf("sf order %+v", sf)
	}
	token, err := store.Token(ctx, tok)
	must(t, err)
	if token.Content.Reveal() != "secret-token" || token.StoreID != "1001" {
		t.Fatalf("token %+v", token)
	}
	active, err := store.ActiveToken(ctx, 1)
	must(t, err)
	if active.ID != tok {
		t.Fatalf("active token %d, want %d", active.ID, tok)
	}

	plain, err := fx.CreateOrder(ctx, shopfixture.OrderSpec{CarrierID: carrier})
	must(t, err)
	if _, err := store.SFOrder(ctx, plain); !errors.Is(err, prestashop.ErrNotFound) {
		t.Fatalf("SFOrder of a non-SF order: %v, want ErrNotFound", err)
	}
	if _, err := store.Order(ctx, 99999); !errors.Is(err, prestashop.ErrNotFound) {
		t.Fatalf("Order(99999): %v, want ErrNotFound", err)
	}
}

func TestModuleAndProcessLog(t *testing.T) {
	ctx := context.Background()
	d, store, fx := testenv.Shop(t)
	m, err := store.Module(ctx, "shoppingfluxexport", 1)
	must(t, err)
	if m.Installed {
		t.Fatal("module reported installed on a fresh shop")
	}
	must(t, fx.InstallModule(ctx, "shoppingfluxexport", true))
	m, err = store.Module(ctx, "shoppingfluxexport", 1)
	must(t, err)
	if !m.Installed || !m.Active {
		t.Fatalf("module %+v", m)
	}
	must(t, store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:test", Msg: "hello", Level: prestashop.LevelInfo, ObjectName: "Order", ObjectID: 7, Session: "s"}))
	var msg string
	var obj int
	must(t, d.DB.QueryRow("SELECT msg, object_id FROM ps_shoppingfeed_processlogger WHERE name = 'sfsync:test'").Scan(&msg, &obj))
	if msg != "hello" || obj != 7 {
		t.Fatalf("log line %q %d", msg, obj)
	}
}
