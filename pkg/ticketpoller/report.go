package ticketpoller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/mail"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// RunReports sends the error reports every ReportInterval until ctx ends.
// Every replica runs it; a per-shop database lock makes one of them send
// each report.
func (p *Poller) RunReports(ctx context.Context) error {
	if p.mailer == nil {
		p.log.Warn("SMTP_URL is not set: error reports go through each shop's own mail settings (PS_MAIL_METHOD 2, SMTP), else to the log")
	}
	t := time.NewTicker(p.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := p.ReportOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("error report not sent; retrying next interval", "err", err)
		}
	}
}

// ReportOnce sends each shop's failures not yet reported, one mail per
// shop (to the log without SMTP_URL), and marks them reported once sent.
// A shop another replica is reporting on is skipped. It returns how many
// failures were reported.
func (p *Poller) ReportOnce(ctx context.Context) (int, error) {
	shops, err := p.store.FailedShops(ctx)
	if err != nil {
		return 0, err
	}
	var errs []error
	total := 0
	for _, shop := range shops {
		n, err := p.reportShop(ctx, shop)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("report of shop %d: %w", shop, err))
		}
	}
	return total, errors.Join(errs...)
}

func (p *Poller) reportShop(ctx context.Context, shop uint32) (int, error) {
	// The lock spans select, send and mark: two replicas never mail the
	// same failures. A crash between send and mark re-sends them.
	release, ok, err := p.store.TryLock(ctx, "report."+strconv.FormatUint(uint64(shop), 10))
	if err != nil {
		return 0, err
	}
	if !ok {
		p.log.Debug("another replica is reporting on this shop", "shop_id", shop)
		return 0, nil
	}
	defer release()
	fs, total, err := p.store.Failures(ctx, shop, p.cfg.ReportMaxRows)
	if err != nil || len(fs) == 0 {
		return 0, err
	}
	ms, err := p.store.MailSettings(ctx, shop)
	if err != nil {
		return 0, err
	}
	shopName := ms.ShopName
	if shopName == "" {
		shopName = "shop " + strconv.FormatUint(uint64(shop), 10)
	}
	rep := report{Shop: shopName, Failures: fs, More: total - len(fs), Lang: ms.LangISO}
	rt := p.route(shop, ms)
	if rt.mailer == nil {
		p.noteNoMail(shop, rt.noMail)
		for _, f := range fs {
			p.log.Warn("error report: order update failed", "shop_id", shop, "order_id", f.OrderID, "reference", f.Reference,
				"marketplace", f.Channel, "marketplace_reference", f.MarketplaceRef, "operation", f.Operation,
				"state", f.StateName, "failed_at", f.FailedAt.Format(time.DateTime), "batch_id", f.BatchID,
				"ticket_id", f.TicketNumber, "err", f.Error)
		}
		if _, err := p.store.MarkReported(ctx, fs, false); err != nil {
			return 0, err
		}
		p.m.reports.WithLabelValues("logged").Inc()
		p.log.Info("error report logged", "shop_id", shop, "failures", len(fs), "more", rep.More)
		return len(fs), nil
	}
	to := p.cfg.ReportTo
	if to == "" {
		to = ms.ShopEmail
	}
	rcpt, err := mail.ParseAddressList(to)
	if err != nil || len(rcpt) == 0 {
		p.m.reports.WithLabelValues("failed").Inc()
		return 0, fmt.Errorf("no recipient: set REPORT_TO, or the shop's PS_SHOP_EMAIL (%q)", to)
	}
	m, err := rep.mail(rt.from, rcpt)
	if err != nil {
		return 0, err
	}
	if err := rt.mailer.Send(ctx, m); err != nil {
		p.m.reports.WithLabelValues("failed").Inc()
		return 0, err
	}
	marked, err := p.store.MarkReported(ctx, fs, true)
	if errors.Is(err, prestashop.ErrFailedTicketDenied) {
		p.log.Warn("error report sent, but the module's failed_ticket flag could not be set", "shop_id", shop, "err", err)
		err = nil
	}
	if err != nil {
		// Sent but not marked: the next report repeats these failures.
		return 0, fmt.Errorf("mark reported after sending: %w", err)
	}
	p.m.reports.WithLabelValues("sent").Inc()
	p.log.Info("error report sent", "shop_id", shop, "failures", len(fs), "marked", marked, "more", rep.More, "to", to)
	return len(fs), nil
}

// report is one shop's error report.
type report struct {
	Shop     string
	Failures []prestashop.Failure
	// More is how many failures wait for the next report.
	More int
	// Lang is the shop's language (iso code); texts exist in English
	// (the default) and French.
	Lang string
}

// reportTexts are a report's words in one language.
type reportTexts struct {
	subjectOne, subjectMany string // [shop] and the count
	intro                   string
	header                  []string
	more                    string // the count
	footer                  string
}

var reportLangs = map[string]reportTexts{
	"en": {
		subjectOne:  "[%s] Shopping Feed: %d order update failed",
		subjectMany: "[%s] Shopping Feed: %d order updates failed",
		intro: "Shopping Feed did not apply these order updates. sfsync does not resend them by itself: " +
			"once the cause is fixed, change the order's state again in PrestaShop (or run sfsync retry).",
		header: []string{"Order", "Marketplace", "Marketplace reference", "Operation", "Current state", "Error", "Time"},
		more:   "%d more failures follow in the next report.",
		footer: "Times are the shop's. The back office's Shopping Feed process log has every line.",
	},
	"fr": {
		subjectOne:  "[%s] Shopping Feed : %d mise à jour de commande a échoué",
		subjectMany: "[%s] Shopping Feed : %d mises à jour de commandes ont échoué",
		intro: "Shopping Feed n'a pas appliqué ces mises à jour de commandes. sfsync ne les renvoie pas de lui-même : " +
			"une fois la cause corrigée, changez à nouveau l'état de la commande dans PrestaShop (ou lancez sfsync retry).",
		header: []string{"Commande", "Marketplace", "Référence marketplace", "Opération", "État actuel", "Erreur", "Heure"},
		more:   "%d autres échecs suivent dans le prochain rapport.",
		footer: "Les heures sont celles de la boutique. Le journal des processus Shopping Feed du back-office contient chaque ligne.",
	},
}

func (r report) texts() reportTexts {
	if t, ok := reportLangs[r.Lang]; ok {
		return t
	}
	return reportLangs["en"]
}

func (r report) lang() string {
	if _, ok := reportLangs[r.Lang]; ok {
		return r.Lang
	}
	return "en"
}

func (r report) subject() string {
	n := len(r.Failures) + r.More
	if n == 1 {
		return fmt.Sprintf(r.texts().subjectOne, r.Shop, n)
	}
	return fmt.Sprintf(r.texts().subjectMany, r.Shop, n)
}

// rows are the table's cells, the same in both parts.
func (r report) rows() [][]string {
	out := make([][]string, len(r.Failures))
	for i, f := range r.Failures {
		op := f.Operation
		if op == "" {
			op = "-"
		}
		out[i] = []string{dash(f.Reference), dash(f.Channel), dash(f.MarketplaceRef), op, dash(f.StateName),
			dash(oneLine(f.Error)), f.FailedAt.Format(time.DateTime)}
	}
	return out
}

func (r report) text() string {
	tx := r.texts()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n\n%s\n\n", r.Shop, tx.intro)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tx.header, "\t"))
	for _, row := range r.rows() {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
	if r.More > 0 {
		fmt.Fprintf(&b, "\n"+tx.more+"\n", r.More)
	}
	b.WriteString("\n" + tx.footer + "\n")
	return b.String()
}

var reportHTML = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif">
<h2>{{.Shop}}</h2>
<p>{{.Intro}}</p>
<table border="1" cellpadding="4" cellspacing="0" style="border-collapse: collapse">
<thead><tr>{{range .Header}}<th align="left">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{if .More}}<p>{{.More}}</p>{{end}}
<p>{{.Footer}}</p>
</body></html>
`))

func (r report) html() (string, error) {
	tx := r.texts()
	more := ""
	if r.More > 0 {
		more = fmt.Sprintf(tx.more, r.More)
	}
	var b bytes.Buffer
	err := reportHTML.Execute(&b, map[string]any{
		"Lang": r.lang(), "Subject": r.subject(), "Shop": r.Shop, "Intro": tx.intro, "Header": tx.header, "Rows": r.rows(),
		"More": more, "Footer": tx.footer,
	})
	if err != nil {
		return "", fmt.Errorf("render report: %w", err)
	}
	return b.String(), nil
}

func (r report) mail(from *mail.Address, to []*mail.Address) (Mail, error) {
	h, err := r.html()
	if err != nil {
		return Mail{}, err
	}
	return Mail{From: from, To: to, Subject: r.subject(), Text: r.text(), HTML: h}, nil
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// oneLine keeps a cell on one line of the text table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
