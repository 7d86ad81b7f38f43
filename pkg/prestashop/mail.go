package prestashop

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sfsync/sfsync/pkg/config"
)

// PrestaShop's mail settings (Advanced Parameters > E-mail), read per shop.
const (
	KeyMailMethod     = "PS_MAIL_METHOD"
	KeyMailServer     = "PS_MAIL_SERVER"
	KeyMailPort       = "PS_MAIL_SMTP_PORT"
	KeyMailUser       = "PS_MAIL_USER"
	KeyMailPassword   = "PS_MAIL_PASSWD"
	KeyMailEncryption = "PS_MAIL_SMTP_ENCRYPTION"
	KeyLangDefault    = "PS_LANG_DEFAULT"
)

// Values of PS_MAIL_METHOD.
const (
	MailMethodPHP  = 1 // PHP's mail()
	MailMethodSMTP = 2
	MailMethodNone = 3 // never send mail
)

// MailSettings are how a shop sends its mail, to whom, and in which
// language.
type MailSettings struct {
	// Method is PS_MAIL_METHOD (0 when unset; PrestaShop then uses mail()).
	Method int
	Server string
	// Port is PS_MAIL_SMTP_PORT (0 when unset).
	Port     int
	User     string
	Password config.Secret
	// Encryption is PS_MAIL_SMTP_ENCRYPTION: off, tls (STARTTLS) or ssl.
	Encryption string
	ShopEmail  string
	ShopName   string
	// LangISO is the iso_code of the shop's default language (PS_LANG_DEFAULT),
	// lower case; "" when it has none.
	LangISO string
}

// MailSettings reads a shop's mail settings and default language. A
// malformed value is an error naming the key and the shop.
func (s *Store) MailSettings(ctx context.Context, shopID uint32) (MailSettings, error) {
	vals, err := s.ConfigValues(ctx, shopID, KeyMailMethod, KeyMailServer, KeyMailPort, KeyMailUser, KeyMailPassword,
		KeyMailEncryption, KeyShopEmail, KeyShopName, KeyLangDefault)
	if err != nil {
		return MailSettings{}, err
	}
	ms := MailSettings{
		Server: strings.TrimSpace(vals[KeyMailServer]), User: vals[KeyMailUser], Password: config.Secret(vals[KeyMailPassword]),
		Encryption: strings.ToLower(strings.TrimSpace(vals[KeyMailEncryption])),
		ShopEmail:  strings.TrimSpace(vals[KeyShopEmail]), ShopName: strings.TrimSpace(vals[KeyShopName]),
	}
	num := func(key string) (int, error) {
		v := strings.TrimSpace(vals[key])
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("shop %d: %s %q is not a number", shopID, key, v)
		}
		return n, nil
	}
	if ms.Method, err = num(KeyMailMethod); err != nil {
		return MailSettings{}, err
	}
	if ms.Port, err = num(KeyMailPort); err != nil {
		return MailSettings{}, err
	}
	lang, err := num(KeyLangDefault)
	if err != nil || lang == 0 {
		return ms, err
	}
	var iso string
	err = s.db.QueryRowContext(ctx, "SELECT iso_code FROM "+s.T("lang")+" WHERE id_lang = ?", lang).Scan(&iso)
	if errors.Is(err, sql.ErrNoRows) {
		return ms, nil // a default language that is gone: the report goes in English
	}
	if err != nil {
		return MailSettings{}, fmt.Errorf("read language %d of shop %d: %w", lang, shopID, err)
	}
	ms.LangISO = strings.ToLower(strings.TrimSpace(iso))
	return ms, nil
}
