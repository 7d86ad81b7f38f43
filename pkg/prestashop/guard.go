package prestashop

import (
	"context"
	"fmt"
	"strings"
)

// Module names the conflict guard looks at.
const (
	ModuleLegacy   = "shoppingfluxexport"
	ModuleOfficial = "shoppingfeed"
)

// SyncBlock says why order sync must not run for a shop; the zero value
// means it may run.
type SyncBlock struct {
	// Reason is a sentence for the merchant: what to change, by name.
	Reason string
	// Options are the legacy module's options the merchant must untick.
	Options []string
}

// Blocked reports whether the shop is blocked.
func (b SyncBlock) Blocked() bool { return b.Reason != "" }

// SyncBlocked applies the conflict guard to a shop. Sync must not run where
// the legacy shoppingfluxexport module is active and configured to sync
// order states (SHOPPING_FLUX_STATUS_SHIPPED or SHOPPING_FLUX_STATUS_CANCELED
// set), nor where no order importer (shoppingfluxexport or shoppingfeed) is
// installed: the legacy module sends those changes itself, and without an
// importer there is nothing to synchronise.
func (s *Store) SyncBlocked(ctx context.Context, shopID uint32) (SyncBlock, error) {
	legacy, err := s.Module(ctx, ModuleLegacy, shopID)
	if err != nil {
		return SyncBlock{}, err
	}
	official, err := s.Module(ctx, ModuleOfficial, shopID)
	if err != nil {
		return SyncBlock{}, err
	}
	if !legacy.Installed && !official.Installed {
		return SyncBlock{Reason: fmt.Sprintf("shop %d: no order importer is installed (neither %s nor %s): install the %s module; nothing is synchronised until then",
			shopID, ModuleLegacy, ModuleOfficial, ModuleOfficial)}, nil
	}
	if !legacy.Active {
		return SyncBlock{}, nil
	}
	vals, err := s.ConfigValues(ctx, shopID, KeyLegacyShipped, KeyLegacyCanceled)
	if err != nil {
		return SyncBlock{}, err
	}
	var set []string
	for _, k := range []string{KeyLegacyShipped, KeyLegacyCanceled} {
		if strings.TrimSpace(vals[k]) != "" {
			set = append(set, k)
		}
	}
	if len(set) == 0 {
		return SyncBlock{}, nil
	}
	return SyncBlock{
		Reason: fmt.Sprintf("shop %d: the legacy module %s synchronises order states itself: untick %s in its configuration; until then sfsync sends nothing for this shop and the legacy module keeps sending",
			shopID, ModuleLegacy, strings.Join(set, " and ")),
		Options: set,
	}, nil
}
