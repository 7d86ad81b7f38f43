package shopfixture

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// langDDL is PrestaShop 8's lang table (install-dev/data/db_structure.sql).
// The ticket poller reads the iso_code of the shop's PS_LANG_DEFAULT to
// write its report in the shop's language.
const langDDL = `CREATE TABLE IF NOT EXISTS PREFIX_lang (
	  id_lang INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
	  name VARCHAR(32) NOT NULL,
	  active TINYINT(3) UNSIGNED NOT NULL DEFAULT 0,
	  iso_code CHAR(2) NOT NULL,
	  language_code CHAR(5) NOT NULL,
	  locale VARCHAR(5) NOT NULL,
	  date_format_lite CHAR(32) NOT NULL DEFAULT 'Y-m-d',
	  date_format_full CHAR(32) NOT NULL DEFAULT 'Y-m-d H:i:s',
	  is_rtl TINYINT(1) NOT NULL DEFAULT 0,
	  PRIMARY KEY (id_lang)
	) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// installLang creates the lang table with language 1, English, as a fresh
// install's default (PS_LANG_DEFAULT).
func installLang(ctx context.Context, db *sql.DB, f *Fixture) error {
	if _, err := db.ExecContext(ctx, strings.ReplaceAll(langDDL, "PREFIX_", f.prefix)); err != nil {
		return fmt.Errorf("install lang table: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT IGNORE INTO "+f.t("lang")+" (id_lang, name, active, iso_code, language_code, locale)"+
		" VALUES (1, 'English (English)', 1, 'en', 'en-us', 'en-US')"); err != nil {
		return fmt.Errorf("install language 1: %w", err)
	}
	return f.SetConfig(ctx, Global, prestashop.KeyLangDefault, "1")
}

// AddLanguage installs a language (iso_code such as "fr") and returns its id.
func (f *Fixture) AddLanguage(ctx context.Context, iso, name string) (uint32, error) {
	res, err := f.db.ExecContext(ctx, "INSERT INTO "+f.t("lang")+" (name, active, iso_code, language_code, locale) VALUES (?, 1, ?, ?, ?)",
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
