// Package events is the event contract between sfsync's services: the
// subjects every message goes on, its headers and dedup ids, and the one
// place each message type is built, encoded and decoded.
//
// Two message types travel, both protojson (proto/sfsync/v1), so that
// `nats stream view` shows a person what is going on:
//
//   - OrderStatusChanged (built from a Change): an order's state changed,
//     or an update the task table holds is due. Consumers treat it as a
//     wake-up: the task row and the order's current state are the truth.
//   - TicketCheck (built from a Batch): follow one Shopping Feed batch until
//     its tickets resolve.
//
// Decoders accept unknown fields: a field added to the contract and rolled
// out to the producers first is ignored by older consumers, never refused.
package events

import (
	"strconv"
	"time"
)

// Subjects. They end in tokens a person can filter on with the nats CLI,
// e.g. `nats stream view SFSYNC_ORDERS --subject 'sfsync.order.status.1.>'`
// for shop 1.
const (
	// OrderStatusPrefix is sfsync.order.status.<shop>.<order>: a change to
	// look at now.
	OrderStatusPrefix = "sfsync.order.status"
	// OrderWaitPrefix is sfsync.order.wait.<shop>.<order>: an update waiting
	// for its due time.
	OrderWaitPrefix = "sfsync.order.wait"
	// TicketCheckPrefix is sfsync.ticket.check.<store>: a batch to check now.
	TicketCheckPrefix = "sfsync.ticket.check"
	// TicketWaitPrefix is sfsync.ticket.wait.<store>: a batch to check again
	// later.
	TicketWaitPrefix = "sfsync.ticket.wait"
)

// Headers the messages carry, for people reading the stream; HeaderBatch
// and HeaderStore also stand in for a TicketCheck body that lacks them.
const (
	HeaderShop      = "Sfsync-Shop"
	HeaderOrder     = "Sfsync-Order"
	HeaderOperation = "Sfsync-Operation"
	HeaderState     = "Sfsync-State"
	HeaderStore     = "Sfsync-Store"
	HeaderBatch     = "Sfsync-Batch"
	// HeaderDue is when a re-check is due (RFC 3339).
	HeaderDue = "Sfsync-Due"
)

// Sources of an OrderStatusChanged.
const (
	SourceDetector = "detector"
	SourceSweeper  = "sweeper"
	SourceRetry    = "retry"
	// SourceDeferred marks the events the sender publishes to wait itself.
	SourceDeferred = "deferred"
)

// OrderStatusSubject is where a change of an order is looked at now.
func OrderStatusSubject(shopID, orderID uint32) string {
	return OrderStatusPrefix + "." + u(shopID) + "." + u(orderID)
}

// OrderWaitSubject is where an update waits for its due time.
func OrderWaitSubject(shopID, orderID uint32) string {
	return OrderWaitPrefix + "." + u(shopID) + "." + u(orderID)
}

// TicketCheckSubject is where the sender hands a new batch to the poller.
func TicketCheckSubject(storeID string) string { return TicketCheckPrefix + "." + token(storeID) }

// TicketWaitSubject is where a batch waits for its next check.
func TicketWaitSubject(storeID string) string { return TicketWaitPrefix + "." + token(storeID) }

// Dedup ids (Nats-Msg-Id). JetStream drops a message whose id it saw within
// the stream's duplicate window, so a producer retried after a lost
// acknowledgement publishes once.

// DetectedID is the id of the event of one order_history row; detector
// names the shop database and table prefix (detector.Key).
func DetectedID(detector string, historyID uint64, target string) string {
	id := detector + ".oh." + strconv.FormatUint(historyID, 10)
	if target != "" && target != TargetShoppingFeed {
		id += "." + target
	}
	return id
}

// SlipID is the id of the event the detector publishes for an order slip.
func SlipID(detector string, slipID uint64) string {
	return detector + ".slip." + strconv.FormatUint(slipID, 10)
}

// SweptID is the id of a task the sweeper republishes at a time: one a
// minute at most.
func SweptID(detector string, taskID uint64, at time.Time) string {
	return detector + ".sweep." + strconv.FormatUint(taskID, 10) + "." + minute(at)
}

// SweptBatchID is the id of a batch the sweeper republishes at a time.
func SweptBatchID(detector, batchID string, at time.Time) string {
	return detector + ".sweepbatch." + batchID + "." + minute(at)
}

// BatchID is the id of the first check of a batch.
func BatchID(storeID, batchID string) string { return "batch." + storeID + "." + batchID }

// RecheckID is the id of a batch's check number attempt: a check retried
// after a lost ack, or two checks of one batch at the same attempt, publish
// one re-check.
func RecheckID(storeID, batchID string, attempt uint32) string {
	return BatchID(storeID, batchID) + "." + strconv.FormatUint(uint64(attempt), 10)
}

// Targets an OrderStatusChanged names.
const (
	TargetShoppingFeed = "shoppingfeed"
	TargetWebhook      = "webhook"
)

func minute(t time.Time) string { return strconv.FormatInt(t.Unix()/60, 10) }

func u(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// token keeps a subject token free of the characters NATS gives meaning to.
func token(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		if c == '.' || c == '*' || c == '>' || c == ' ' || c < 0x21 || c > 0x7e {
			b[i] = '_'
		}
	}
	return string(b)
}
