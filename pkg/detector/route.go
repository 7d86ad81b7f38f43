package detector

import (
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
	"github.com/sfsync/sfsync/pkg/targets"
)

// routed is what one order_history row becomes for one target: an event,
// and a saved task when mapped.
type routed struct {
	row prestashop.HistoryRow
	// op is the event's Sfsync-Operation header: the Shopping Feed
	// operation, "none" (no mapping list holds the state), "unknown" (the
	// mapping cannot be read), or the webhook's status name.
	op     string
	mapped bool
	// notBefore is when the update is due: the change's time, plus the
	// shipment delay for a shipment.
	notBefore time.Time
	// target is "" for Shopping Feed, targets.Webhook for the webhook.
	target string
}

// concerned reports whether a row may concern a target, and so needs its
// shop looked up: a usable row (see skipBad) of an order of a known shop that is a Shopping Feed order,
// or any order when the webhook takes them all.
func concerned(r prestashop.HistoryRow, t targets.Config) bool {
	return r.Bad == "" && r.ShopID != 0 && (r.SF || t.AllOrders())
}

// route decides what each row becomes, in row order. shops holds the shop
// of every concerned row.
//
//   - Shopping Feed: every change of a Shopping Feed order of a shop that
//     syncs is published, so that a pending update is judged again by the
//     order's current state; a mapped state also saves a task, due at once,
//     or after the shipment delay for a shipment. A shop whose mapping
//     cannot be read keeps its changes as tasks that wait like shipments:
//     the sender judges them once the merchant fixes the configuration.
//   - The webhook: every change to a state with a status name, for the
//     orders it covers; the conflict guard and the sync switch are
//     Shopping Feed's and do not apply.
func route(rows []prestashop.HistoryRow, shops map[uint32]*shoppolicy.Shop, t targets.Config) []routed {
	out := make([]routed, 0, len(rows))
	toSF, toHook := t.ToShoppingFeed(), t.ToWebhook()
	for _, r := range rows {
		if !concerned(r, t) {
			continue
		}
		sh := shops[r.ShopID]
		if toSF && r.SF && sh.Syncs() {
			p := routed{row: r, notBefore: r.At, op: "none"}
			if sh.ConfigErr != nil {
				p.mapped, p.op, p.notBefore = true, "unknown", r.At.Add(sh.Delay)
			} else if op, ok := sh.Operation(r.StateID); ok {
				p.mapped, p.op = true, string(op)
				if op == prestashop.OpShip {
					p.notBefore = r.At.Add(sh.Delay)
				}
			}
			out = append(out, p)
		}
		if name, ok := sh.Hook.Names[r.StateID]; toHook && ok {
			p := routed{row: r, notBefore: r.At, op: name, mapped: true, target: targets.Webhook}
			if r.StateID == sh.Hook.Shipping {
				p.notBefore = r.At.Add(sh.Delay)
			}
			out = append(out, p)
		}
	}
	return out
}
