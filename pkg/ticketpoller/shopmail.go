package ticketpoller

import (
	"fmt"
	"net/mail"
	"strconv"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// reportRoute is how one shop's report goes out: a mailer and its sender
// address, or none (the report goes to the log) and why.
type reportRoute struct {
	mailer *smtpMailer
	from   *mail.Address
	// noMail says why no mail can go; set when mailer is nil.
	noMail string
}

// route picks how a shop's report goes: SMTP_URL (and REPORT_FROM) when
// set; else the shop's own SMTP settings (PS_MAIL_METHOD 2), from
// REPORT_FROM or the shop's PS_SHOP_EMAIL; else the log.
func (p *Poller) route(shop uint32, ms prestashop.MailSettings) reportRoute {
	if p.mailer != nil {
		from, _ := mail.ParseAddress(p.cfg.ReportFrom) // checked by Validate
		return reportRoute{mailer: p.mailer, from: from}
	}
	const hint = "set SMTP_URL and REPORT_FROM to mail error reports"
	switch ms.Method {
	case prestashop.MailMethodSMTP:
	case prestashop.MailMethodNone:
		return reportRoute{noMail: fmt.Sprintf("the shop never sends mail (%s 3): %s", prestashop.KeyMailMethod, hint)}
	default:
		return reportRoute{noMail: fmt.Sprintf("the shop sends mail with PHP's mail() (%s %d), which sfsync cannot use: %s", prestashop.KeyMailMethod, ms.Method, hint)}
	}
	if ms.Server == "" {
		return reportRoute{noMail: fmt.Sprintf("the shop's %s is empty: %s", prestashop.KeyMailServer, hint)}
	}
	u := SMTPURL{Host: ms.Server, Port: ms.Port, User: ms.User, Password: ms.Password}
	if u.User == "" {
		u.Password = ""
	}
	requireTLS := false
	switch ms.Encryption {
	case "ssl":
		u.ImplicitTLS = true
		if u.Port == 0 {
			u.Port = 465
		}
	case "tls":
		requireTLS = true
	case "", "off":
	default:
		return reportRoute{noMail: fmt.Sprintf("the shop's %s %q is not off, tls or ssl: %s", prestashop.KeyMailEncryption, ms.Encryption, hint)}
	}
	if u.Port == 0 {
		u.Port = 25 // PrestaShop's default
	}
	if u.Port > 65535 {
		return reportRoute{noMail: fmt.Sprintf("the shop's %s %d is not a port: %s", prestashop.KeyMailPort, u.Port, hint)}
	}
	var from *mail.Address
	if p.cfg.ReportFrom != "" {
		from, _ = mail.ParseAddress(p.cfg.ReportFrom) // checked by Validate
	} else {
		a, err := mail.ParseAddress(ms.ShopEmail)
		if err != nil {
			return reportRoute{noMail: fmt.Sprintf("the shop's %s %q is not a mail address to send from: set REPORT_FROM", prestashop.KeyShopEmail, ms.ShopEmail)}
		}
		from = &mail.Address{Name: ms.ShopName, Address: a.Address}
	}
	m := newSMTPMailer(u, p.cfg.SMTPTimeout, p.smtpTLS)
	m.requireStartTLS = requireTLS
	return reportRoute{mailer: m, from: from}
}

// noteNoMail logs, once per shop and reason, why its reports go to the log.
func (p *Poller) noteNoMail(shop uint32, why string) {
	key := "nomail:" + strconv.FormatUint(uint64(shop), 10)
	p.mu.Lock()
	seen := p.noMail[key] == why
	p.noMail[key] = why
	p.mu.Unlock()
	if !seen {
		p.log.Warn("error report cannot be mailed for this shop; it goes to the log", "shop_id", shop, "reason", why)
	}
}
