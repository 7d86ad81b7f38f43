package shopfixture

import (
	"context"
	"fmt"
	"strings"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// installLang makes language 1 (English, created with the lang table in
// InstallCore) the shop's default, as a fresh install's PS_LANG_DEFAULT:
// the ticket poller writes its report in that language.
func installLang(ctx context.Context, f *Fixture) error {
	return f.SetConfig(ctx, Global, prestashop.KeyLangDefault, "1")
}

// AddLanguage installs a language (iso_code such as "fr") and returns its id.
func (f *Fixture) AddLanguage(ctx context.Context, iso, name string) (uint32, error) {
	res, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("lang")+
		" (name, active, iso_code, language_code, locale, date_format_lite, date_format_full, is_rtl) VALUES (?, 1, ?, ?, ?, 'd/m/Y', 'd/m/Y H:i:s', 0)",
		name, iso, iso+"-"+iso, iso+"-"+strings.ToUpper(iso))
	if err != nil {
		return 0, fmt.Errorf("add language %s: %w", iso, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("add language %s: %w", iso, err)
	}
	return uint32(id), nil
}
