package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// Order is what sfsync reads of an orders row.
type Order struct {
	ID           uint32
	Reference    string
	ShopID       uint32
	ShopGroupID  uint32
	CarrierID    uint32
	LangID       uint32
	CurrentState uint32
	Module       string
	DateAdd      time.Time
	DateUpd      time.Time
	// LastChange is the order's newest order_history id (the change that
	// set CurrentState; 0 when it has none) and LastChangeAge how long ago
	// it was written, by the database's clock, in whole seconds.
	LastChange    uint64
	LastChangeAge time.Duration
}

// Order reads one order and its newest state change.
func (s *Store) Order(ctx context.Context, orderID uint32) (Order, error) {
	var o Order
	var age int64
	err := s.db.QueryRowContext(ctx, `SELECT o.id_order, o.reference, o.id_shop, o.id_shop_group, o.id_carrier, o.id_lang,
	        o.current_state, o.module, o.date_add, o.date_upd,
	        COALESCE(h.id_order_history, 0), COALESCE(TIMESTAMPDIFF(SECOND, h.date_add, NOW()), 0)
	      FROM `+s.T("orders")+` o LEFT JOIN `+s.T("order_history")+` h
	        ON h.id_order_history = (SELECT MAX(id_order_history) FROM `+s.T("order_history")+` WHERE id_order = o.id_order)
	      WHERE o.id_order = ?`, orderID).
		Scan(&o.ID, &o.Reference, &o.ShopID, &o.ShopGroupID, &o.CarrierID, &o.LangID, &o.CurrentState, &o.Module, &o.DateAdd, &o.DateUpd,
			&o.LastChange, &age)
	o.LastChangeAge = time.Duration(max(age, 0)) * time.Second
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, fmt.Errorf("order %d: %w", orderID, ErrNotFound)
	}
	if err != nil {
		return Order{}, fmt.Errorf("read order %d: %w", orderID, err)
	}
	return o, nil
}

// OrderState is an order_state row with its name in one language.
type OrderState struct {
	ID        uint32
	Name      string
	Shipped   bool
	Delivery  bool
	Paid      bool
	Invoice   bool
	Logable   bool
	Hidden    bool
	Deleted   bool
	SendEmail bool
}

// OrderState reads a state and its name in langID (any language if that one
// has no name).
func (s *Store) OrderState(ctx context.Context, stateID, langID uint32) (OrderState, error) {
	var st OrderState
	var name sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT os.id_order_state,
	        COALESCE((SELECT l.name FROM `+s.T("order_state_lang")+` l WHERE l.id_order_state = os.id_order_state
	                  ORDER BY l.id_lang = ? DESC, l.id_lang LIMIT 1), ''),
	        os.shipped, os.delivery, os.paid, os.invoice, os.logable, os.hidden, os.deleted, os.send_email
	      FROM `+s.T("order_state")+` os WHERE os.id_order_state = ?`, langID, stateID).
		Scan(&st.ID, &name, &st.Shipped, &st.Delivery, &st.Paid, &st.Invoice, &st.Logable, &st.Hidden, &st.Deleted, &st.SendEmail)
	if errors.Is(err, sql.ErrNoRows) {
		return OrderState{}, fmt.Errorf("order state %d: %w", stateID, ErrNotFound)
	}
	if err != nil {
		return OrderState{}, fmt.Errorf("read order state %d: %w", stateID, err)
	}
	st.Name = name.String
	return st, nil
}

// Tracking is an order's carrier and tracking number.
type Tracking struct {
	CarrierID   uint32
	CarrierName string
	// CarrierURL has '@' where the tracking number goes.
	CarrierURL string
	Number     string
}

// Link is the carrier's tracking URL for this number: '@' replaced by the
// number and a doubled "http://http://" collapsed. Empty without a URL or
// a number.
func (t Tracking) Link() string {
	if t.CarrierURL == "" || t.Number == "" {
		return ""
	}
	link := strings.ReplaceAll(t.CarrierURL, "@", t.Number)
	for _, p := range []string{"http://http://", "https://https://", "http://https://", "https://http://"} {
		if strings.HasPrefix(link, p) {
			link = link[strings.Index(link, "://")+3:]
		}
	}
	return link
}

// Tracking reads the order's first order_carrier row (the one PrestaShop
// shows) and its carrier. An order with no order_carrier row falls back to
// orders.id_carrier with no number.
func (s *Store) Tracking(ctx context.Context, orderID uint32) (Tracking, error) {
	var t Tracking
	var name, url, number sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT c.id_carrier, c.name, c.url, oc.tracking_number
	      FROM `+s.T("order_carrier")+` oc JOIN `+s.T("carrier")+` c ON c.id_carrier = oc.id_carrier
	      WHERE oc.id_order = ? ORDER BY oc.id_order_carrier LIMIT 1`, orderID).
		Scan(&t.CarrierID, &name, &url, &number)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.db.QueryRowContext(ctx, `SELECT c.id_carrier, c.name, c.url FROM `+s.T("orders")+` o
		      JOIN `+s.T("carrier")+` c ON c.id_carrier = o.id_carrier WHERE o.id_order = ?`, orderID).
			Scan(&t.CarrierID, &name, &url)
		if errors.Is(err, sql.ErrNoRows) {
			return Tracking{}, nil
		}
	}
	if err != nil {
		return Tracking{}, fmt.Errorf("read tracking of order %d: %w", orderID, err)
	}
	t.CarrierName, t.CarrierURL, t.Number = name.String, strings.TrimSpace(url.String), strings.TrimSpace(number.String)
	return t, nil
}

// SFOrder links a PrestaShop order to its Shopping Feed order.
type SFOrder struct {
	OrderID uint32
	// InternalID is the SF order id (id_internal_shoppingfeed); may be empty.
	InternalID string
	// MarketplaceRef and Channel identify the order when it has no SF id.
	MarketplaceRef string
	Channel        string
	// TokenID is the shoppingfeed_token row the order came through; 0 if unknown.
	TokenID uint32
}

// SFOrder reads the order's shoppingfeed_order row; ErrNotFound when the
// order did not come from Shopping Feed.
func (s *Store) SFOrder(ctx context.Context, orderID uint32) (SFOrder, error) {
	var o SFOrder
	var internal, ref, channel sql.NullString
	var token sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id_order, id_internal_shoppingfeed, id_order_marketplace, name_marketplace,
	        id_shoppingfeed_token FROM `+s.T("shoppingfeed_order")+` WHERE id_order = ?`, orderID).
		Scan(&o.OrderID, &internal, &ref, &channel, &token)
	if errors.Is(err, sql.ErrNoRows) {
		return SFOrder{}, fmt.Errorf("shoppingfeed order for order %d: %w", orderID, ErrNotFound)
	}
	if err != nil {
		return SFOrder{}, fmt.Errorf("read shoppingfeed order for order %d: %w", orderID, err)
	}
	o.InternalID, o.MarketplaceRef, o.Channel = strings.TrimSpace(internal.String), ref.String, channel.String
	if token.Valid && token.Int64 > 0 {
		o.TokenID = uint32(token.Int64)
	}
	return o, nil
}

// Token is a shoppingfeed_token row. Its content is a Secret.
type Token struct {
	ID       uint32
	ShopID   uint32
	Content  config.Secret
	Active   bool
	StoreID  string
	Merchant string
}

const tokenCols = "id_shoppingfeed_token, id_shop, content, active, COALESCE(shoppingfeed_store_id, ''), COALESCE(merchant, '')"

func scanToken(row *sql.Row) (Token, error) {
	var t Token
	var content string
	var store sql.NullString
	if err := row.Scan(&t.ID, &t.ShopID, &content, &t.Active, &store, &t.Merchant); err != nil {
		return Token{}, err
	}
	t.Content, t.StoreID = config.Secret(content), store.String
	return t, nil
}

// Token reads one token row.
func (s *Store) Token(ctx context.Context, tokenID uint32) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM "+s.T("shoppingfeed_token")+" WHERE id_shoppingfeed_token = ?", tokenID))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("shoppingfeed token %d: %w", tokenID, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("read shoppingfeed token %d: %w", tokenID, err)
	}
	return t, nil
}

// ActiveToken reads the shop's first active token.
func (s *Store) ActiveToken(ctx context.Context, shopID uint32) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM "+s.T("shoppingfeed_token")+
		" WHERE id_shop = ? AND active = 1 ORDER BY id_shoppingfeed_token LIMIT 1", shopID))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("active shoppingfeed token of shop %d: %w", shopID, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("read active shoppingfeed token of shop %d: %w", shopID, err)
	}
	return t, nil
}

// Module is a row of the module table and whether it is enabled for a shop.
type Module struct {
	Installed bool
	Active    bool
}

// Module reads whether a module is installed and active for shopID: active
// globally and, when module_shop has rows for it, enabled for that shop.
func (s *Store) Module(ctx context.Context, name string, shopID uint32) (Module, error) {
	var active bool
	var id uint32
	err := s.db.QueryRowContext(ctx, "SELECT id_module, active FROM "+s.T("module")+" WHERE name = ?", name).Scan(&id, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return Module{}, nil
	}
	if err != nil {
		return Module{}, fmt.Errorf("read module %s: %w", name, err)
	}
	m := Module{Installed: true, Active: active}
	if active {
		var rows, forShop int
		err := s.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(id_shop = ?), 0) FROM "+s.T("module_shop")+" WHERE id_module = ?", shopID, id).Scan(&rows, &forShop)
		if err != nil {
			return Module{}, fmt.Errorf("read module %s shops: %w", name, err)
		}
		m.Active = rows == 0 || forShop > 0
	}
	return m, nil
}
