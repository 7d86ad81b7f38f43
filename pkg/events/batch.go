package events

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

// Batch is a TicketCheck as producers and consumers use it: one Shopping
// Feed batch whose tickets the poller follows. See
// proto/sfsync/v1/events.proto for each field's meaning.
type Batch struct {
	// ShopDB names the shop database of the batch's tasks; "" when the
	// producer did not say (any poller takes it).
	ShopDB    string
	StoreID   string
	ShopID    uint32
	BatchID   string
	Operation string
	TokenID   uint32
	Attempt   uint32
	// FirstSeen is when Shopping Feed accepted the batch; zero when unknown.
	FirstSeen time.Time
	Orders    []BatchOrder
	// Due is when a re-check is due (the Sfsync-Due header); zero for a
	// check to run now.
	Due time.Time
}

// BatchOrder is one order of a batch with its task row.
type BatchOrder struct {
	OrderID   uint32
	TaskID    uint64
	SFOrderID string
	Reference string
	Channel   string
}

// Subject is where the check goes: the wait subject for a re-check.
func (b Batch) Subject() string {
	if !b.Due.IsZero() {
		return TicketWaitSubject(b.StoreID)
	}
	return TicketCheckSubject(b.StoreID)
}

// proto is the one place a TicketCheck is built.
func (b Batch) proto() *sfsyncv1.TicketCheck {
	tc := &sfsyncv1.TicketCheck{StoreId: b.StoreID, ShopId: b.ShopID, BatchId: b.BatchID, Operation: b.Operation,
		Attempt: b.Attempt, FirstSeen: stamp(b.FirstSeen), TokenId: b.TokenID, ShopDb: b.ShopDB}
	for _, o := range b.Orders {
		tc.Orders = append(tc.Orders, &sfsyncv1.TicketOrder{OrderId: o.OrderID, TaskId: o.TaskID,
			SfOrderId: o.SFOrderID, Reference: o.Reference, Channel: o.Channel})
	}
	return tc
}

// Msg builds the check's message with its dedup id (BatchID, RecheckID or
// SweptBatchID).
func (b Batch) Msg(msgID string) (*nats.Msg, error) {
	body, err := protojson.Marshal(b.proto())
	if err != nil {
		return nil, fmt.Errorf("encode check of batch %s: %w", b.BatchID, err)
	}
	msg := nats.NewMsg(b.Subject())
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	msg.Header.Set(HeaderStore, b.StoreID)
	msg.Header.Set(HeaderBatch, b.BatchID)
	msg.Header.Set(HeaderShop, u(b.ShopID))
	msg.Header.Set(HeaderOperation, b.Operation)
	if !b.Due.IsZero() {
		msg.Header.Set(HeaderDue, b.Due.UTC().Format(time.RFC3339Nano))
	}
	return msg, nil
}

// DecodeBatch reads a TicketCheck message. Unknown fields are ignored; the
// batch and store ids fall back to the headers. A message that is not a
// check, or names no batch, is an error no retry can mend.
func DecodeBatch(data []byte, h nats.Header) (Batch, error) {
	var tc sfsyncv1.TicketCheck
	if err := decoder.Unmarshal(data, &tc); err != nil {
		return Batch{}, fmt.Errorf("decode ticket check: %w", err)
	}
	b := Batch{ShopDB: tc.ShopDb, StoreID: tc.StoreId, ShopID: tc.ShopId, BatchID: tc.BatchId, Operation: tc.Operation,
		TokenID: tc.TokenId, Attempt: tc.Attempt}
	if t := asTime(tc.FirstSeen); t.Unix() > 0 {
		b.FirstSeen = t
	}
	for _, o := range tc.Orders {
		if o != nil {
			b.Orders = append(b.Orders, BatchOrder{OrderID: o.OrderId, TaskID: o.TaskId, SFOrderID: o.SfOrderId,
				Reference: o.Reference, Channel: o.Channel})
		}
	}
	if b.BatchID == "" {
		b.BatchID = h.Get(HeaderBatch)
	}
	if b.BatchID == "" {
		return Batch{}, fmt.Errorf("decode ticket check: no batch id")
	}
	if b.StoreID == "" {
		b.StoreID = h.Get(HeaderStore)
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDue)); err == nil {
		b.Due = t
	}
	return b, nil
}
