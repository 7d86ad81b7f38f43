package shopfixture

import (
	"context"
	"fmt"
)

// ProductSpec is a catalog product, with the fields the feed can export as
// its reference.
type ProductSpec struct {
	Reference, EAN13, UPC, ISBN, MPN string
	// SupplierReference, when set, adds a product_supplier row (supplier 1).
	SupplierReference string
}

// CreateProduct adds a product as the back office does (the columns
// without a default filled) and returns its id.
func (f *Fixture) CreateProduct(ctx context.Context, p ProductSpec) (uint32, error) {
	id, err := f.insert(ctx, "INSERT INTO "+f.t("product")+" (id_tax_rules_group, reference, ean13, upc, isbn, mpn, date_add, date_upd)"+
		" VALUES (1, NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NOW(), NOW())",
		p.Reference, p.EAN13, p.UPC, p.ISBN, p.MPN)
	if err != nil {
		return 0, fmt.Errorf("create product: %w", err)
	}
	if p.SupplierReference != "" {
		if _, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("product_supplier")+" (id_product, id_product_attribute, id_supplier, product_supplier_reference, id_currency)"+
			" VALUES (?, 0, 1, ?, 1)", id, p.SupplierReference); err != nil {
			return 0, fmt.Errorf("create product supplier: %w", err)
		}
	}
	return id, nil
}

// AddOrderLine adds an order_detail line of quantity units of a product
// (combination 0) to an order, as the order import does, and returns its
// id.
func (f *Fixture) AddOrderLine(ctx context.Context, orderID, productID uint32, quantity int) (uint32, error) {
	id, err := f.insert(ctx, "INSERT INTO "+f.t("order_detail")+
		" (id_order, id_shop, product_id, product_attribute_id, product_name, product_quantity, product_weight, tax_name)"+
		" SELECT id_order, id_shop, ?, 0, ?, ?, 0, '' FROM "+f.t("orders")+" WHERE id_order = ?",
		productID, fmt.Sprintf("Product %d", productID), quantity, orderID)
	if err != nil {
		return 0, fmt.Errorf("add a line to order %d: %w", orderID, err)
	}
	return id, nil
}

// SlipLine is one refunded line of an order slip.
type SlipLine struct {
	OrderDetailID uint32
	Quantity      int
}

// CreateSlip adds an order slip (a partial refund made in the back office,
// as OrderSlip::create writes it: the slip, then its lines, in one
// transaction) and returns its id. shipping says whether it refunds the
// shipping.
func (f *Fixture) CreateSlip(ctx context.Context, orderID uint32, shipping bool, lines ...SlipLine) (uint64, error) {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("create slip: %w", err)
	}
	defer tx.Rollback()
	ship := 0
	if shipping {
		ship = 1
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("order_slip")+
		" (id_customer, id_order, shipping_cost, amount, shipping_cost_amount, `partial`, date_add, date_upd)"+
		" SELECT id_customer, id_order, ?, 0, 0, 1, NOW(), NOW() FROM "+f.t("orders")+" WHERE id_order = ?", ship, orderID)
	if err != nil {
		return 0, fmt.Errorf("create slip of order %d: %w", orderID, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("create slip of order %d: %w", orderID, err)
	}
	for _, l := range lines {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+f.t("order_slip_detail")+" (id_order_slip, id_order_detail, product_quantity) VALUES (?, ?, ?)",
			id, l.OrderDetailID, l.Quantity); err != nil {
			return 0, fmt.Errorf("create slip of order %d: line %d: %w", orderID, l.OrderDetailID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("create slip of order %d: %w", orderID, err)
	}
	return uint64(id), nil
}
