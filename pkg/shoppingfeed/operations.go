package shoppingfeed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// Operation is an order operation, the last segment of
// POST /v1/store/{storeId}/order/{operation}.
type Operation string

// The order operations Shopping Feed accepts (upload-documents, multipart,
// is not supported).
const (
	OpShip          Operation = "ship"
	OpCancel        Operation = "cancel"
	OpRefund        Operation = "refund"
	OpDeliver       Operation = "deliver"
	OpAccept        Operation = "accept"
	OpRefuse        Operation = "refuse"
	OpAcknowledge   Operation = "acknowledge"
	OpUnacknowledge Operation = "unacknowledge"
)

// Operations lists every Operation the client sends.
var Operations = []Operation{OpShip, OpCancel, OpRefund, OpDeliver, OpAccept, OpRefuse, OpAcknowledge, OpUnacknowledge}

// Valid reports whether op is one of the Operations.
func (op Operation) Valid() bool {
	for _, o := range Operations {
		if op == o {
			return true
		}
	}
	return false
}

// OrderRef identifies an order: by its Shopping Feed id when ID != 0 (sent
// as {"id": n}), else by the marketplace reference and channel name (sent as
// {"reference": …, "channelName": …}, deprecated by Shopping Feed).
type OrderRef struct {
	ID          int64
	Reference   string
	ChannelName string
}

func (r OrderRef) String() string {
	if r.ID != 0 {
		return fmt.Sprintf("id %d", r.ID)
	}
	return fmt.Sprintf("reference %q on %q", r.Reference, r.ChannelName)
}

// ShipItem is one line of a partial shipment: the Shopping Feed order item
// id and the quantity shipped.
type ShipItem struct {
	ID       int64 `json:"id"`
	Quantity int   `json:"quantity"`
}

// ReturnInfo is the return label that goes with a shipment.
type ReturnInfo struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"trackingNumber"`
}

// Refund says what a refund covers. A nil *Refund in an OrderOperation is
// the full refund the official module sends: shipping true, no products.
type Refund struct {
	Shipping bool            `json:"shipping"`
	Products []RefundProduct `json:"products"`
}

// RefundProduct is one refunded product of a partial refund.
type RefundProduct struct {
	Reference string `json:"reference"`
	Quantity  int    `json:"quantity"`
}

// AckStatus is an acknowledgement's outcome.
type AckStatus string

// Acknowledgement outcomes.
const (
	AckSuccess AckStatus = "success"
	AckError   AckStatus = "error"
)

// OrderOperation is one entry of an operation's "order" list: the order and
// the fields of the operation it goes with. Fields that do not belong to the
// operation are ignored, so the JSON is exactly the reference's:
//
//	ship:          carrier, trackingNumber, trackingLink, items ([] unless
//	               Items is set), warehouseId (null unless set), returnInfo
//	               (only when set)
//	cancel, accept: reason ("" by default)
//	refund:        refund ({shipping: true, products: []} unless Refund is set)
//	acknowledge:   status ("success" unless AckStatus is set), storeReference
//	               (required), acknowledgedAt (now unless set), message
//	deliver, refuse, unacknowledge: nothing but the order
type OrderOperation struct {
	Order OrderRef

	// ship
	Carrier        string
	TrackingNumber string
	TrackingLink   string
	Items          []ShipItem
	WarehouseID    string
	ReturnInfo     *ReturnInfo

	// cancel, accept
	Reason string

	// refund
	Refund *Refund

	// acknowledge
	AckStatus      AckStatus
	StoreReference string
	AcknowledgedAt time.Time
	Message        string
}

// Batch is Shopping Feed's receipt for one operation POST: the batch whose
// tickets (one per order entry) tell each order's outcome.
type Batch struct {
	ID string
	// TicketLink is the _links.ticket href, as the API gave it.
	TicketLink string
	// Operation, StoreID and Orders recall what was sent.
	Operation Operation
	StoreID   string
	Orders    int
}

// isoLayout is PHP's date('c'), what the official module sends.
const isoLayout = "2006-01-02T15:04:05-07:00"

// orderIdent is the identifying part of an entry.
type orderIdent struct {
	ID          int64  `json:"id,omitempty"`
	Reference   string `json:"reference,omitempty"`
	ChannelName string `json:"channelName,omitempty"`
}

func (r OrderRef) ident() (orderIdent, error) {
	switch {
	case r.ID > 0:
		return orderIdent{ID: r.ID}, nil
	case r.ID < 0:
		return orderIdent{}, fmt.Errorf("order id %d is negative", r.ID)
	case r.Reference != "" && r.ChannelName != "":
		return orderIdent{Reference: r.Reference, ChannelName: r.ChannelName}, nil
	case r.Reference != "":
		return orderIdent{}, fmt.Errorf("order reference %q has no channel name", r.Reference)
	default:
		return orderIdent{}, fmt.Errorf("order has neither a Shopping Feed id nor a reference and channel name")
	}
}

type shipEntry struct {
	orderIdent
	Carrier        string      `json:"carrier"`
	TrackingNumber string      `json:"trackingNumber"`
	TrackingLink   string      `json:"trackingLink"`
	Items          []ShipItem  `json:"items"`
	WarehouseID    *string     `json:"warehouseId"`
	ReturnInfo     *ReturnInfo `json:"returnInfo,omitempty"`
}

type reasonEntry struct {
	orderIdent
	Reason string `json:"reason"`
}

type refundEntry struct {
	orderIdent
	Refund Refund `json:"refund"`
}

type ackEntry struct {
	orderIdent
	Status         AckStatus `json:"status"`
	StoreReference string    `json:"storeReference"`
	AcknowledgedAt string    `json:"acknowledgedAt"`
	Message        string    `json:"message"`
}

// entry returns the JSON value of o as an entry of op's "order" list.
func (o OrderOperation) entry(op Operation, now time.Time) (any, error) {
	id, err := o.Order.ident()
	if err != nil {
		return nil, err
	}
	switch op {
	case OpShip:
		e := shipEntry{orderIdent: id, Carrier: o.Carrier, TrackingNumber: o.TrackingNumber,
			TrackingLink: o.TrackingLink, Items: o.Items, ReturnInfo: o.ReturnInfo}
		if e.Items == nil {
			e.Items = []ShipItem{}
		}
		if o.WarehouseID != "" {
			w := o.WarehouseID
			e.WarehouseID = &w
		}
		return e, nil
	case OpCancel, OpAccept:
		return reasonEntry{orderIdent: id, Reason: o.Reason}, nil
	case OpRefund:
		r := Refund{Shipping: true, Products: []RefundProduct{}}
		if o.Refund != nil {
			r = *o.Refund
			if r.Products == nil {
				r.Products = []RefundProduct{}
			}
		}
		return refundEntry{orderIdent: id, Refund: r}, nil
	case OpAcknowledge:
		if o.StoreReference == "" {
			return nil, fmt.Errorf("acknowledge needs the store's order reference")
		}
		status := o.AckStatus
		if status == "" {
			status = AckSuccess
		}
		if status != AckSuccess && status != AckError {
			return nil, fmt.Errorf("acknowledge status %q is not success or error", status)
		}
		at := o.AcknowledgedAt
		if at.IsZero() {
			at = now
		}
		return ackEntry{orderIdent: id, Status: status, StoreReference: o.StoreReference,
			AcknowledgedAt: at.Format(isoLayout), Message: o.Message}, nil
	case OpDeliver, OpRefuse, OpUnacknowledge:
		return id, nil
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// EncodeOperation returns the JSON body of one operation POST,
// {"order":[…]}, or an error matching ErrInvalidRequest. Operate sends
// exactly this.
func EncodeOperation(op Operation, orders []OrderOperation) ([]byte, error) {
	return encodeOperation(op, orders, time.Now())
}

func encodeOperation(op Operation, orders []OrderOperation, now time.Time) ([]byte, error) {
	if !op.Valid() {
		return nil, invalidf("unknown operation %q", op)
	}
	if len(orders) == 0 {
		return nil, invalidf("%s: no order", op)
	}
	entries := make([]any, len(orders))
	for i, o := range orders {
		e, err := o.entry(op, now)
		if err != nil {
			return nil, invalidf("%s: order[%d]: %v", op, i, err)
		}
		entries[i] = e
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Order []any `json:"order"`
	}{entries}); err != nil {
		return nil, invalidf("%s: encode: %v", op, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Operate sends one operation for orders (at most MaxOrdersPerRequest; the
// caller groups) to the store in one POST and returns the batch Shopping
// Feed created. The outcome of each order comes later, in the batch's
// tickets (BatchTickets). An invalid entry fails the whole call before any
// request is sent.
func (c *Client) Operate(ctx context.Context, token config.Secret, storeID string, op Operation, orders []OrderOperation) (Batch, error) {
	if err := checkStore(storeID); err != nil {
		return Batch{}, err
	}
	if len(orders) > c.cfg.MaxOrdersPerRequest {
		return Batch{}, invalidf("%s: %d orders, more than the %d allowed in one request (SF_MAX_ORDERS_PER_REQUEST)",
			op, len(orders), c.cfg.MaxOrdersPerRequest)
	}
	body, err := encodeOperation(op, orders, time.Now())
	if err != nil {
		return Batch{}, err
	}
	res, err := c.do(ctx, call{
		op:     string(op),
		method: http.MethodPost,
		path:   "/v1/store/" + url.PathEscape(storeID) + "/order/" + string(op),
		body:   body,
		token:  token,
	})
	if err != nil {
		return Batch{}, err
	}
	b, err := decodeBatch(res.body)
	if err != nil {
		return Batch{}, fmt.Errorf("shoppingfeed %s: store %s: %d orders accepted (HTTP %d) but: %w", op, storeID, len(orders), res.status, err)
	}
	b.Operation, b.StoreID, b.Orders = op, storeID, len(orders)
	return b, nil
}

func checkStore(storeID string) error {
	if storeID == "" {
		return invalidf("empty store id")
	}
	return nil
}
