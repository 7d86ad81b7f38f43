package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// StackOptions point the merchant's story at a running stack: the compose
// stack of `make compose-test`, whose seed service seeded the database,
// whose sandbox runs with SANDBOX_ORDERS set to SandboxOrders(), and whose
// workers run with the demo's timings (SHIPPED_DELAY 4s and so on).
type StackOptions struct {
	// MySQLDSN is the stack's shop database.
	MySQLDSN string
	// SandboxURL is the stack's sandbox, for GET /_sandbox/operations.
	SandboxURL string
	// MailURL is the mail catcher's GET /api/messages (mailsink), where
	// the ticket poller's report to ReportTo must arrive.
	MailURL  string
	ReportTo string
	Out      io.Writer
	// Timeout bounds the wait for every order to settle, then for the mail.
	Timeout time.Duration
}

// RunStack plays the demo's merchant actions on the stack's database and
// checks, per order, what the stack's sandbox received and what the task
// table and the process log hold, as Run does; then that the report of the
// failed order reached the mail catcher. It returns an error naming every
// order that did not end as expected, or the missing mail.
func RunStack(ctx context.Context, o StackOptions) error {
	out := o.Out
	began := time.Now()
	db, err := prestashop.Open(ctx, prestashop.Config{DSN: config.Secret(o.MySQLDSN), Prefix: "ps_"})
	if err != nil {
		return err
	}
	defer db.Close()
	data, err := LoadData(ctx, db, "ps_")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "merchant's story on the stack: %s\n\n", data.Describe())
	sandbox := strings.TrimSuffix(o.SandboxURL, "/") + "/_sandbox/operations"
	ops := func(ctx context.Context) ([]sfsandbox.RecordedOperation, error) {
		var v struct {
			Operations []sfsandbox.RecordedOperation `json:"operations"`
		}
		return v.Operations, getJSON(ctx, sandbox, &v)
	}
	steps := script(data)
	if err := act(ctx, out, shopfixture.New(db, "ps_"), steps); err != nil {
		return err
	}
	results, err := settle(ctx, out, db, steps, o.Timeout, ops)
	if err != nil {
		return err
	}
	if err := verdict(out, results); err != nil {
		return err
	}
	if err := reportMail(ctx, out, o, steps); err != nil {
		return err
	}
	fmt.Fprintf(out, "merchant's story finished in %s\n", time.Since(began).Round(time.Second))
	return nil
}

// reportMail waits for a mail to o.ReportTo whose text names, by its
// marketplace reference, every order whose task row the script expects
// failed.
func reportMail(ctx context.Context, out io.Writer, o StackOptions, steps []step) error {
	var want []string
	for _, s := range steps {
		if s.wantRow == "failed" {
			want = append(want, reference(s.order.SFID))
		}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		var msgs []struct {
			From    string   `json:"from"`
			To      []string `json:"to"`
			Subject string   `json:"subject"`
			Text    string   `json:"text"`
		}
		if err := getJSON(ctx, o.MailURL, &msgs); err != nil {
			return err
		}
		for _, m := range msgs {
			if !contains(m.To, o.ReportTo) {
				continue
			}
			missing := false
			for _, id := range want {
				missing = missing || !strings.Contains(m.Text, id)
			}
			if !missing {
				fmt.Fprintf(out, "report mail: %q from %s to %s, naming order %s\n", m.Subject, m.From, o.ReportTo, strings.Join(want, ", "))
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no report mail to %s naming order %s reached the mail catcher in %s (%d messages there)", o.ReportTo, strings.Join(want, ", "), timeout, len(msgs))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", redact(u), resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", redact(u), err)
	}
	return nil
}

// redact drops the user information and query of u.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	p.User, p.RawQuery = nil, ""
	return p.String()
}
