package shoppingfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// OrderStatus is an order's status on Shopping Feed.
type OrderStatus string

// Order statuses, as Shopping Feed spells them.
const (
	OrderCreated                OrderStatus = "created"
	OrderWaitingStoreAcceptance OrderStatus = "waiting_store_acceptance"
	OrderRefused                OrderStatus = "refused"
	OrderWaitingShipment        OrderStatus = "waiting_shipment"
	OrderShipped                OrderStatus = "shipped"
	OrderPartiallyShipped       OrderStatus = "partially_shipped"
	OrderCancelled              OrderStatus = "cancelled"
	OrderRefunded               OrderStatus = "refunded"
	OrderPartiallyRefunded      OrderStatus = "partially_refunded"
	OrderDelivered              OrderStatus = "delivered"
)

// Reflects reports whether an order in status s has already had op
// applied: shipped (or delivered, which comes after) for ship, cancelled
// for cancel, refunded for a full refund, delivered for deliver.
func (s OrderStatus) Reflects(op Operation) bool {
	switch op {
	case OpShip:
		return s == OrderShipped || s == OrderDelivered
	case OpCancel:
		return s == OrderCancelled
	case OpRefund:
		return s == OrderRefunded
	case OpDeliver:
		return s == OrderDelivered
	}
	return false
}

// Order is what sfsync reads of an order on Shopping Feed.
type Order struct {
	ID        int64
	Status    OrderStatus
	UpdatedAt time.Time
}

// Order reads one order of a store by its Shopping Feed id (GET
// /v1/store/{storeId}/order/{orderId}). An order Shopping Feed does not
// know is an error matching ErrNotFound.
func (c *Client) Order(ctx context.Context, token config.Secret, storeID string, orderID int64) (Order, error) {
	if err := checkStore(storeID); err != nil {
		return Order{}, err
	}
	if orderID <= 0 {
		return Order{}, invalidf("order id %d is not positive", orderID)
	}
	res, err := c.do(ctx, call{
		op:     "order",
		method: http.MethodGet,
		path:   "/v1/store/" + url.PathEscape(storeID) + "/order/" + strconv.FormatInt(orderID, 10),
		token:  token,
	})
	if err != nil {
		return Order{}, err
	}
	var body struct {
		ID        json.Number `json:"id"`
		Status    string      `json:"status"`
		UpdatedAt string      `json:"updatedAt"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || body.Status == "" {
		return Order{}, fmt.Errorf("%w: order %d: no status in %.200q", ErrMalformedResponse, orderID, res.body)
	}
	o := Order{ID: orderID, Status: OrderStatus(body.Status)}
	if t, err := time.Parse(time.RFC3339, body.UpdatedAt); err == nil {
		o.UpdatedAt = t
	}
	return o, nil
}
