package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// Finding is one line of `sfsync check`.
type Finding struct {
	ShopID uint32 `json:"shop_id,omitempty"`
	Check  string `json:"check"`
	// Result is ok, warn (works, but look), or block (nothing is sent).
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// Check results.
const (
	ResultOK    = "ok"
	ResultWarn  = "warn"
	ResultBlock = "block"
)

// Check inspects the schema, every shop's configuration, the conflict
// guard and the tokens (against the API when client is not nil).
func (e *Env) Check(ctx context.Context, client *shoppingfeed.Client, envToken config.Secret, envStore string) ([]Finding, error) {
	var out []Finding
	add := func(shop uint32, check, result, detail string) {
		out = append(out, Finding{ShopID: shop, Check: check, Result: result, Detail: detail})
	}
	s := e.Store
	schema, err := s.CheckSchema(ctx)
	if err != nil {
		return nil, err
	}
	if len(schema.ShopMissing) > 0 {
		add(0, "schema", ResultBlock, "missing: "+strings.Join(schema.ShopMissing, ", ")+" (PrestaShop's and the Shopping Feed module's own tables: install the module)")
	}
	if len(schema.Missing) > 0 {
		add(0, "schema", ResultBlock, "missing: "+strings.Join(schema.Missing, ", ")+" (run `sfsync migrate` as a user allowed to CREATE and ALTER)")
	} else if len(schema.ShopMissing) == 0 {
		add(0, "schema", ResultOK, fmt.Sprintf("tables and columns present, sfsync schema version %d", schema.Version))
	}
	if e.JS == nil {
		add(0, "broker", ResultBlock, fmt.Sprint(e.NATSErr))
	} else {
		add(0, "broker", ResultOK, "reachable at "+e.NC.ConnectedUrlRedacted())
	}
	shops, err := s.Shops(ctx)
	if err != nil {
		return out, err
	}
	for _, sh := range shops {
		st, err := s.Settings(ctx, sh.ID)
		var ce *prestashop.ConfigError
		switch {
		case errors.As(err, &ce):
			add(sh.ID, "configuration", ResultBlock, err.Error())
		case err != nil:
			return out, err
		case !st.SyncEnabled:
			add(sh.ID, "configuration", ResultBlock, prestashop.KeySyncEnabled+" is off: the shop is skipped")
		default:
			var parts []string
			for _, k := range prestashop.MappingKeys {
				ids := st.Mapping[k.Op]
				strs := make([]string, len(ids))
				for i, id := range ids {
					strs[i] = strconv.FormatUint(uint64(id), 10)
				}
				parts = append(parts, fmt.Sprintf("%s=[%s]", k.Op, strings.Join(strs, ",")))
			}
			res := ResultOK
			if len(st.Mapping[prestashop.OpShip])+len(st.Mapping[prestashop.OpCancel])+len(st.Mapping[prestashop.OpRefund])+len(st.Mapping[prestashop.OpDeliver]) == 0 {
				res = ResultWarn
				parts = append(parts, "no state is mapped: nothing will be sent")
			}
			add(sh.ID, "configuration", res, fmt.Sprintf("%s; shipment delay %d min; %d orders per batch", strings.Join(parts, " "), st.TimeShiftMinutes, st.MaxOrders))
		}
		block, err := s.SyncBlocked(ctx, sh.ID)
		if err != nil {
			return out, err
		}
		if block.Blocked() {
			add(sh.ID, "conflict guard", ResultBlock, block.Reason)
		} else {
			add(sh.ID, "conflict guard", ResultOK, "no conflicting module")
		}
		tok, err := s.ActiveToken(ctx, sh.ID)
		switch {
		case errors.Is(err, prestashop.ErrNotFound) && envToken != "":
			e.checkToken(ctx, client, sh.ID, envToken, envStore, "SF_TOKEN", add)
		case errors.Is(err, prestashop.ErrNotFound):
			add(sh.ID, "token", ResultWarn, "no active shoppingfeed_token row and SF_TOKEN unset: only orders with a token of their own can be sent")
		case err != nil:
			return out, err
		default:
			e.checkToken(ctx, client, sh.ID, tok.Content, tok.StoreID, fmt.Sprintf("shoppingfeed_token %d", tok.ID), add)
		}
	}
	return out, nil
}

func (e *Env) checkToken(ctx context.Context, client *shoppingfeed.Client, shop uint32, tok config.Secret, store, source string, add func(uint32, string, string, string)) {
	if store == "" {
		add(shop, "token", ResultBlock, source+" has no store id")
		return
	}
	if client == nil {
		add(shop, "token", ResultOK, source+" for store "+store+" (not checked against the API)")
		return
	}
	me, err := client.Me(ctx, tok)
	switch {
	case errors.Is(err, shoppingfeed.ErrTokenRejected):
		add(shop, "token", ResultBlock, source+": the API rejects the token")
		return
	case err != nil:
		add(shop, "token", ResultWarn, source+": the API could not be asked: "+err.Error())
		return
	}
	ids := make([]string, 0, len(me.Stores))
	for _, st := range me.Stores {
		ids = append(ids, st.ID)
	}
	if !slices.Contains(ids, store) {
		add(shop, "token", ResultBlock, fmt.Sprintf("%s does not own store %s (it owns %s)", source, store, strings.Join(ids, ", ")))
		return
	}
	add(shop, "token", ResultOK, source+" accepted by the API for store "+store)
}

// PrintCheck prints findings; it reports whether any blocks sync.
func (e *Env) PrintCheck(fs []Finding) (blocking bool, err error) {
	for _, f := range fs {
		if f.Result == ResultBlock {
			blocking = true
		}
	}
	if e.JSON {
		return blocking, e.printJSON(fs)
	}
	w := e.table()
	fmt.Fprintln(w, "SHOP\tCHECK\tRESULT\tDETAIL")
	for _, f := range fs {
		shop := "-"
		if f.ShopID != 0 {
			shop = strconv.FormatUint(uint64(f.ShopID), 10)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", shop, f.Check, strings.ToUpper(f.Result), f.Detail)
	}
	w.Flush()
	if blocking {
		fmt.Fprintln(e.Out, "\nsomething blocks synchronisation: see the BLOCK lines above")
	} else {
		fmt.Fprintln(e.Out, "\nnothing blocks synchronisation")
	}
	return blocking, nil
}
