package shoppingfeed

import (
	"errors"
	"testing"
	"time"
)

// TestEncodeOperation pins the JSON of every operation to the field names of
// ../shared/reference/shoppingfeed-api.md and to what the official module
// sends by default.
func TestEncodeOperation(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	byID := OrderRef{ID: 5001}
	byRef := OrderRef{Reference: "AMZ-123-456", ChannelName: "amazon"}
	tests := []struct {
		name   string
		op     Operation
		orders []OrderOperation
		want   string
	}{
		{
			name:   "ship by id, as the module sends it",
			op:     OpShip,
			orders: []OrderOperation{{Order: byID, Carrier: "Colissimo", TrackingNumber: "6A123", TrackingLink: "https://t.example/6A123"}},
			want:   `{"order":[{"id":5001,"carrier":"Colissimo","trackingNumber":"6A123","trackingLink":"https://t.example/6A123","items":[],"warehouseId":null}]}`,
		},
		{
			name:   "ship by reference",
			op:     OpShip,
			orders: []OrderOperation{{Order: byRef, Carrier: "UPS", TrackingNumber: "1Z"}},
			want:   `{"order":[{"reference":"AMZ-123-456","channelName":"amazon","carrier":"UPS","trackingNumber":"1Z","trackingLink":"","items":[],"warehouseId":null}]}`,
		},
		{
			name: "partial ship with warehouse and return label",
			op:   OpShip,
			orders: []OrderOperation{{Order: byID, Carrier: "DHL", TrackingNumber: "T1", TrackingLink: "L",
				Items: []ShipItem{{ID: 77, Quantity: 2}}, WarehouseID: "W1", ReturnInfo: &ReturnInfo{Carrier: "DHL", TrackingNumber: "R1"}}},
			want: `{"order":[{"id":5001,"carrier":"DHL","trackingNumber":"T1","trackingLink":"L","items":[{"id":77,"quantity":2}],"warehouseId":"W1","returnInfo":{"carrier":"DHL","trackingNumber":"R1"}}]}`,
		},
		{
			name:   "ship ignores fields of other operations",
			op:     OpShip,
			orders: []OrderOperation{{Order: byID, Carrier: "C", TrackingNumber: "T", Reason: "x", Refund: &Refund{}, StoreReference: "S"}},
			want:   `{"order":[{"id":5001,"carrier":"C","trackingNumber":"T","trackingLink":"","items":[],"warehouseId":null}]}`,
		},
		{
			name:   "cancel sends an empty reason",
			op:     OpCancel,
			orders: []OrderOperation{{Order: byID}},
			want:   `{"order":[{"id":5001,"reason":""}]}`,
		},
		{
			name:   "cancel with reason, by reference",
			op:     OpCancel,
			orders: []OrderOperation{{Order: byRef, Reason: "out of stock"}},
			want:   `{"order":[{"reference":"AMZ-123-456","channelName":"amazon","reason":"out of stock"}]}`,
		},
		{
			name:   "refund is full by default",
			op:     OpRefund,
			orders: []OrderOperation{{Order: byID}},
			want:   `{"order":[{"id":5001,"refund":{"shipping":true,"products":[]}}]}`,
		},
		{
			name:   "partial refund",
			op:     OpRefund,
			orders: []OrderOperation{{Order: byID, Refund: &Refund{Shipping: false, Products: []RefundProduct{{Reference: "SKU-1", Quantity: 1}}}}},
			want:   `{"order":[{"id":5001,"refund":{"shipping":false,"products":[{"reference":"SKU-1","quantity":1}]}}]}`,
		},
		{
			name:   "refund with nil products sends []",
			op:     OpRefund,
			orders: []OrderOperation{{Order: byID, Refund: &Refund{Shipping: false}}},
			want:   `{"order":[{"id":5001,"refund":{"shipping":false,"products":[]}}]}`,
		},
		{
			name:   "deliver sends the order only",
			op:     OpDeliver,
			orders: []OrderOperation{{Order: byID, Carrier: "ignored"}},
			want:   `{"order":[{"id":5001}]}`,
		},
		{
			name:   "deliver by reference",
			op:     OpDeliver,
			orders: []OrderOperation{{Order: byRef}},
			want:   `{"order":[{"reference":"AMZ-123-456","channelName":"amazon"}]}`,
		},
		{
			name:   "accept sends a reason",
			op:     OpAccept,
			orders: []OrderOperation{{Order: byID}},
			want:   `{"order":[{"id":5001,"reason":""}]}`,
		},
		{
			name:   "refuse sends the order only",
			op:     OpRefuse,
			orders: []OrderOperation{{Order: byID}},
			want:   `{"order":[{"id":5001}]}`,
		},
		{
			name:   "unacknowledge sends the order only",
			op:     OpUnacknowledge,
			orders: []OrderOperation{{Order: byID}},
			want:   `{"order":[{"id":5001}]}`,
		},
		{
			name:   "acknowledge defaults to success now",
			op:     OpAcknowledge,
			orders: []OrderOperation{{Order: byID, StoreReference: "XKBKNABJK"}},
			want:   `{"order":[{"id":5001,"status":"success","storeReference":"XKBKNABJK","acknowledgedAt":"2026-03-01T09:30:00+00:00","message":""}]}`,
		},
		{
			name: "acknowledge an error",
			op:   OpAcknowledge,
			orders: []OrderOperation{{Order: byRef, StoreReference: "R", AckStatus: AckError, Message: "no stock <&>",
				AcknowledgedAt: time.Date(2026, 2, 1, 8, 0, 0, 0, time.FixedZone("CET", 3600))}},
			want: `{"order":[{"reference":"AMZ-123-456","channelName":"amazon","status":"error","storeReference":"R","acknowledgedAt":"2026-02-01T08:00:00+01:00","message":"no stock <&>"}]}`,
		},
		{
			name:   "several orders keep their order; id wins over reference",
			op:     OpDeliver,
			orders: []OrderOperation{{Order: OrderRef{ID: 1, Reference: "R", ChannelName: "C"}}, {Order: OrderRef{ID: 2}}},
			want:   `{"order":[{"id":1},{"id":2}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeOperation(tt.op, tt.orders, now)
			if err != nil {
				t.Fatalf("encodeOperation: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("JSON\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEncodeOperationRefuses(t *testing.T) {
	tests := []struct {
		name   string
		op     Operation
		orders []OrderOperation
	}{
		{"unknown operation", "teleport", []OrderOperation{{Order: OrderRef{ID: 1}}}},
		{"upload-documents is not supported", "upload-documents", []OrderOperation{{Order: OrderRef{ID: 1}}}},
		{"no order", OpShip, nil},
		{"neither id nor reference", OpShip, []OrderOperation{{Order: OrderRef{}, TrackingNumber: "T"}}},
		{"reference without channel", OpCancel, []OrderOperation{{Order: OrderRef{Reference: "R"}}}},
		{"channel without reference", OpCancel, []OrderOperation{{Order: OrderRef{ChannelName: "amazon"}}}},
		{"negative id", OpDeliver, []OrderOperation{{Order: OrderRef{ID: -3}}}},
		{"second entry bad", OpDeliver, []OrderOperation{{Order: OrderRef{ID: 1}}, {}}},
		{"acknowledge without store reference", OpAcknowledge, []OrderOperation{{Order: OrderRef{ID: 1}}}},
		{"acknowledge with unknown status", OpAcknowledge, []OrderOperation{{Order: OrderRef{ID: 1}, StoreReference: "S", AckStatus: "maybe"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EncodeOperation(tt.op, tt.orders)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
			if Retryable(err) {
				t.Errorf("Retryable(%v) = true", err)
			}
		})
	}
}

func TestTicketPayloadMatches(t *testing.T) {
	tests := []struct {
		name string
		p    TicketPayload
		ref  OrderRef
		want bool
	}{
		{"same id", TicketPayload{ID: 5}, OrderRef{ID: 5}, true},
		{"other id", TicketPayload{ID: 5, Reference: "R", ChannelName: "C"}, OrderRef{ID: 6, Reference: "R", ChannelName: "C"}, false},
		{"payload without id, by reference", TicketPayload{Reference: "R", ChannelName: "C"}, OrderRef{ID: 6, Reference: "R", ChannelName: "C"}, true},
		{"other channel", TicketPayload{Reference: "R", ChannelName: "D"}, OrderRef{Reference: "R", ChannelName: "C"}, false},
		{"nothing to match", TicketPayload{}, OrderRef{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Matches(tt.ref); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTicketState(t *testing.T) {
	tests := []struct {
		s                 TicketState
		pending, resolved bool
	}{
		{TicketScheduled, true, false},
		{TicketRunning, true, false},
		{TicketSucceed, false, true},
		{TicketFailed, false, true},
		{TicketCanceled, false, true},
		{"", true, false},
		{"someday", true, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			if tt.s.Pending() != tt.pending || tt.s.Resolved() != tt.resolved {
				t.Errorf("Pending/Resolved = %v/%v, want %v/%v", tt.s.Pending(), tt.s.Resolved(), tt.pending, tt.resolved)
			}
		})
	}
}
