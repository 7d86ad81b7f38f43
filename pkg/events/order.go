package events

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

// Change is an OrderStatusChanged as producers and consumers use it; see
// proto/sfsync/v1/events.proto for each field's meaning. Zero times are
// left out of the message.
type Change struct {
	ShopDB    string
	ShopID    uint32
	OrderID   uint32
	HistoryID uint64
	StateID   uint32
	ChangedAt time.Time
	NotBefore time.Time
	Position  uint64
	TaskID    uint64
	Source    string
	// Target is "" or TargetShoppingFeed for Shopping Feed, TargetWebhook
	// for the webhook.
	Target string
	// Action is "" for a status change, prestashop.ActionPartialRefund
	// for an order slip (HistoryID is then the slip's id).
	Action string
}

// Webhook reports whether the change concerns the webhook target.
func (c Change) Webhook() bool { return c.Target == TargetWebhook }

// Deferred is the event the sender publishes to look at c's update again
// at notBefore (the database's clock): the same order and change, without
// the detector's position.
func (c Change) Deferred(taskID uint64, notBefore time.Time) Change {
	c.HistoryID, c.Position = 0, 0
	c.TaskID, c.NotBefore, c.Source = taskID, notBefore, SourceDeferred
	return c
}

// Waits reports whether the event goes to the wait subject: an update due
// after its change (a shipment and its delay), or one the sender put back
// to wait. Waiting updates never stand in the due lane ahead of urgent
// ones.
func (c Change) Waits() bool {
	return c.Source == SourceDeferred || (!c.ChangedAt.IsZero() && c.NotBefore.After(c.ChangedAt))
}

// Subject is where the event goes.
func (c Change) Subject() string {
	if c.Waits() {
		return OrderWaitSubject(c.ShopID, c.OrderID)
	}
	return OrderStatusSubject(c.ShopID, c.OrderID)
}

// proto is the one place an OrderStatusChanged is built.
func (c Change) proto() *sfsyncv1.OrderStatusChanged {
	return &sfsyncv1.OrderStatusChanged{
		ShopId: c.ShopID, OrderId: c.OrderID, OrderHistoryId: c.HistoryID, OrderStateId: c.StateID,
		ChangedAt: stamp(c.ChangedAt), NotBefore: stamp(c.NotBefore), Position: c.Position, TaskId: c.TaskID,
		Source: c.Source, ShopDb: c.ShopDB, Target: c.Target, Action: c.Action,
	}
}

// Msg builds the event's message. operation goes in the Sfsync-Operation
// header (what the update will do, or why it waits); msgID is its dedup id,
// "" for none.
func (c Change) Msg(operation, msgID string) *nats.Msg {
	msg := nats.NewMsg(c.Subject())
	msg.Data = encodeChange(c.proto())
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	msg.Header.Set(HeaderShop, u(c.ShopID))
	msg.Header.Set(HeaderOrder, u(c.OrderID))
	if c.StateID != 0 {
		msg.Header.Set(HeaderState, u(c.StateID))
	}
	if operation != "" {
		msg.Header.Set(HeaderOperation, operation)
	}
	return msg
}

// DecodeChange reads an OrderStatusChanged body. Unknown fields are
// ignored; a body that is not one, or names no order, is an error no retry
// can mend.
func DecodeChange(data []byte) (Change, error) {
	var ev sfsyncv1.OrderStatusChanged
	if err := decoder.Unmarshal(data, &ev); err != nil {
		return Change{}, fmt.Errorf("decode order-status event: %w", err)
	}
	if ev.OrderId == 0 {
		return Change{}, fmt.Errorf("decode order-status event: no order id")
	}
	return Change{
		ShopDB: ev.ShopDb, ShopID: ev.ShopId, OrderID: ev.OrderId, HistoryID: ev.OrderHistoryId, StateID: ev.OrderStateId,
		ChangedAt: asTime(ev.ChangedAt), NotBefore: asTime(ev.NotBefore), Position: ev.Position, TaskID: ev.TaskId,
		Source: ev.Source, Target: ev.Target, Action: ev.Action,
	}, nil
}

// decoder is every decoder's options: unknown fields are ignored.
var decoder = protojson.UnmarshalOptions{DiscardUnknown: true}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func asTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil || !ts.IsValid() {
		return time.Time{}
	}
	return ts.AsTime()
}
