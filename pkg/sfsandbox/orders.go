package sfsandbox

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Order statuses, as Shopping Feed spells them.
const (
	OrderWaitingShipment   = "waiting_shipment"
	OrderShipped           = "shipped"
	OrderPartiallyShipped  = "partially_shipped"
	OrderCancelled         = "cancelled"
	OrderRefunded          = "refunded"
	OrderPartiallyRefunded = "partially_refunded"
	OrderDelivered         = "delivered"
	OrderRefused           = "refused"
)

// orderView is an order as GET /v1/store/{storeId}/order/{orderId} shows it.
type orderView struct {
	ID          int64  `json:"id"`
	Reference   string `json:"reference,omitempty"`
	ChannelName string `json:"channelName,omitempty"`
	Status      string `json:"status"`
	UpdatedAt   string `json:"updatedAt,omitempty"`
}

// statusAfter is the order status a succeeded operation leaves.
func statusAfter(t *ticket) (string, bool) {
	switch t.op {
	case "ship":
		if bytes.Contains(t.payload, []byte(`"items":[{`)) {
			return OrderPartiallyShipped, true
		}
		return OrderShipped, true
	case "cancel":
		return OrderCancelled, true
	case "refund":
		if bytes.Contains(t.payload, []byte(`"products":[{`)) {
			return OrderPartiallyRefunded, true
		}
		return OrderRefunded, true
	case "deliver":
		return OrderDelivered, true
	case "refuse":
		return OrderRefused, true
	case "accept":
		return OrderWaitingShipment, true
	}
	return "", false
}

// handleOrder serves one order by its Shopping Feed id. Its status is the
// one the last operation whose ticket succeeded left (waiting_shipment
// before any): an operation is applied when its ticket succeeds, not when
// the POST is accepted. An order the store does not know, and that no
// operation named, is 404.
func (s *Sandbox) handleOrder(w http.ResponseWriter, r *http.Request) {
	storeID, ok := s.authorizedStore(w, r)
	if !ok {
		return
	}
	raw := r.PathValue("operation")
	if _, isOp := operationFields[raw]; isOp {
		methodNotAllowed(http.MethodPost)(w, r)
		return
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Order %q not found", raw))
		return
	}
	now := s.now()
	s.mu.Lock()
	v := orderView{ID: id, Status: OrderWaitingShipment}
	found := false
	if book := s.known[storeID]; book != nil {
		if o, ok := book.byID[id]; ok {
			found, v.Reference, v.ChannelName = true, o.Reference, o.ChannelName
		}
	}
	var updated time.Time
	for _, t := range s.byStore[storeID] {
		if t.orderID != id {
			continue
		}
		found = true
		if st, _, done := t.stateAt(now); !done || st != StateSucceed || t.finishedAt.Before(updated) {
			continue
		}
		if status, ok := statusAfter(t); ok {
			v.Status, updated = status, t.finishedAt
		}
	}
	s.mu.Unlock()
	if !found {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Order %d not found in store %d", id, storeID))
		return
	}
	if !updated.IsZero() {
		v.UpdatedAt = updated.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, v)
}
