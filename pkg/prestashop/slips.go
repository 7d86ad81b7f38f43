package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// An order slip (order_slip, with its lines in order_slip_detail) is what
// PrestaShop 8 writes for a refund made in the back office: a partial
// refund of some of an order's lines, with or without its shipping. The
// detector tails order_slip by id as it tails order_history, and each new
// slip of a Shopping Feed order becomes a PARTIAL_REFUND task whose
// sfsync_history_first and sfsync_history_last are slip ids: the task
// sends the lines of the order's slips in that range.

// SlipRow is an order_slip row with what the detector decides on.
type SlipRow struct {
	ID      uint64
	OrderID uint32
	At      time.Time
	// ShopID is the order's shop; 0 when the order row is missing.
	ShopID uint32
	// SF is true for a Shopping Feed order.
	SF bool
	// Bad says why the row cannot be used; "" for a good row.
	Bad string
}

const slipCols = `SELECT s.id_order_slip, s.id_order, s.date_add, COALESCE(o.id_shop, 0), sf.id_order IS NOT NULL`

func (s *Store) slipFrom() string {
	return ` FROM ` + s.T("order_slip") + ` s
	  LEFT JOIN ` + s.T("orders") + ` o ON o.id_order = s.id_order
	  LEFT JOIN ` + s.T("shoppingfeed_order") + ` sf ON sf.id_order = s.id_order`
}

// SlipsAfter reads up to limit order_slip rows with ids above after, in id
// order.
func (s *Store) SlipsAfter(ctx context.Context, after uint64, limit int) ([]SlipRow, error) {
	return s.slips(ctx, slipCols+s.slipFrom()+` WHERE s.id_order_slip > ? ORDER BY s.id_order_slip LIMIT ?`, after, limit)
}

func (s *Store) slips(ctx context.Context, q string, args ...any) ([]SlipRow, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read order slips: %w", err)
	}
	defer rows.Close()
	var out []SlipRow
	for rows.Next() {
		// Scanned loose, as history rows are: one row that does not fit
		// must not stop the rows after it.
		var id uint64
		var order, at, shop, sf any
		if err := rows.Scan(&id, &order, &at, &shop, &sf); err != nil {
			return nil, fmt.Errorf("read order slips: %w", err)
		}
		r := SlipRow{ID: id}
		orderID, bad := orderValue(order)
		t, err := timeValue(at)
		if err != nil {
			bad = append(bad, "date_add "+err.Error())
		}
		if len(bad) > 0 {
			r.Bad = strings.Join(bad, "; ")
		} else {
			r.OrderID, r.At = orderID, t
			r.ShopID, r.SF = joinedValues(shop, sf)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read order slips: %w", err)
	}
	return out, nil
}

// MaxSlipID is the highest order_slip id, 0 when there is none.
func (s *Store) MaxSlipID(ctx context.Context) (uint64, error) {
	return s.maxID(ctx, "order_slip", "id_order_slip", time.Time{})
}

// MaxSlipIDBefore is the highest id of a slip made before t, an instant
// (converted to the shop's wall clock as MaxHistoryIDBefore does).
func (s *Store) MaxSlipIDBefore(ctx context.Context, t time.Time) (uint64, error) {
	return s.maxID(ctx, "order_slip", "id_order_slip", t)
}

// Reference formats: SHOPPINGFEED_PRODUCT_FEED_REFERENCE_FORMAT, the
// product field the module's feed exports as each product's reference
// ("" is its default: the product id).
var ReferenceFormats = []string{"", "reference", "supplier_reference", "isbn", "ean13", "upc", "mpn"}

// RefundLine is one refunded line of a partial refund.
type RefundLine struct {
	Reference string
	Quantity  int
}

// PartialRefund is what a PARTIAL_REFUND task sends: the lines of the
// order's slips it covers, and whether one of them refunds the shipping.
type PartialRefund struct {
	Slips    int
	Lines    []RefundLine
	Shipping bool
}

// PartialRefund reads the order's slips with ids from first to last and
// their lines, each named by the product reference that the official
// module's partial refund sends (its ShoppingfeedProduct with the line's
// product id only, so a combination's product goes by its product's
// reference): with format "", the product id; else the product's field
// format, or for supplier_reference its first product_supplier
// reference. Lines of one product are added up.
func (s *Store) PartialRefund(ctx context.Context, orderID uint32, first, last uint64, format string) (PartialRefund, error) {
	var pr PartialRefund
	var sel string
	switch format {
	case "":
		sel = "CAST(d.product_id AS CHAR)"
	case "supplier_reference":
		sel = "(SELECT ps.product_supplier_reference FROM " + s.T("product_supplier") + " ps WHERE ps.id_product = d.product_id AND ps.id_product_attribute = 0" +
			" ORDER BY ps.id_product_supplier LIMIT 1)"
	case "reference", "isbn", "ean13", "upc", "mpn":
		sel = "(SELECT p.`" + format + "` FROM " + s.T("product") + " p WHERE p.id_product = d.product_id)"
	default:
		return pr, fmt.Errorf("%w: %s = %q is none of reference, supplier_reference, isbn, ean13, upc, mpn (or empty)", ErrBadReferenceFormat, KeyReferenceFormat, ColumnText(format, 40))
	}
	rows, err := s.db.QueryContext(ctx, "SELECT s.id_order_slip, s.shipping_cost, d.product_id, COALESCE("+sel+", ''), sd.product_quantity"+
		" FROM "+s.T("order_slip")+" s"+
		" LEFT JOIN "+s.T("order_slip_detail")+" sd ON sd.id_order_slip = s.id_order_slip"+
		" LEFT JOIN "+s.T("order_detail")+" d ON d.id_order_detail = sd.id_order_detail"+
		" WHERE s.id_order = ? AND s.id_order_slip BETWEEN ? AND ? ORDER BY s.id_order_slip, sd.id_order_detail", orderID, first, last)
	if err != nil {
		return pr, fmt.Errorf("read order slips %d to %d of order %d: %w", first, last, orderID, err)
	}
	defer rows.Close()
	seen := map[uint64]bool{}
	at := map[string]int{}
	for rows.Next() {
		var slip uint64
		var shipping int
		var product sql.NullInt64
		var ref string
		var qty sql.NullInt64
		if err := rows.Scan(&slip, &shipping, &product, &ref, &qty); err != nil {
			return pr, fmt.Errorf("read order slips of order %d: %w", orderID, err)
		}
		if !seen[slip] {
			seen[slip] = true
			pr.Slips++
		}
		pr.Shipping = pr.Shipping || shipping != 0
		if !product.Valid || !qty.Valid || qty.Int64 <= 0 {
			continue // a slip of shipping only, or a line whose order line is gone
		}
		ref = strings.TrimSpace(ref)
		if ref == "" {
			return pr, fmt.Errorf("%w: product %d of order %d has no %s", ErrNoReference, product.Int64, orderID, referenceName(format))
		}
		if i, ok := at[ref]; ok {
			pr.Lines[i].Quantity += int(qty.Int64)
			continue
		}
		at[ref] = len(pr.Lines)
		pr.Lines = append(pr.Lines, RefundLine{Reference: ref, Quantity: int(qty.Int64)})
	}
	if err := rows.Err(); err != nil {
		return pr, fmt.Errorf("read order slips of order %d: %w", orderID, err)
	}
	return pr, nil
}

func referenceName(format string) string {
	if format == "" {
		return "product id"
	}
	return strconv.Quote(format) + " (" + KeyReferenceFormat + ")"
}

// Errors of PartialRefund that the merchant must fix.
var (
	ErrBadReferenceFormat = errors.New("product reference format unknown")
	ErrNoReference        = errors.New("refunded product has no reference")
)

// SlipsDone is the highest order slip id of the order whose partial refund
// went out and succeeded (its sfsync_task_done mark); 0 when none did.
func (s *Store) SlipsDone(ctx context.Context, orderID uint32) (uint64, error) {
	var id uint64
	err := s.db.QueryRowContext(ctx, "SELECT id_order_history FROM "+s.T("sfsync_task_done")+" WHERE id_order = ? AND action = ?", orderID, ActionPartialRefund).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the partial refunds done of order %d: %w", orderID, err)
	}
	return id, nil
}
