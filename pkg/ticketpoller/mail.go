package ticketpoller

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"time"
)

// Mail is one message of the error report.
type Mail struct {
	From    *mail.Address
	To      []*mail.Address
	Subject string
	// Text and HTML are the two alternative bodies.
	Text string
	HTML string
}

// smtpMailer delivers mail to the SMTP_URL server: STARTTLS when the
// server offers it (or TLS from the start for smtps://), AUTH PLAIN or
// LOGIN when a user is set, never over a plain connection to another host.
type smtpMailer struct {
	url     SMTPURL
	timeout time.Duration
	tls     *tls.Config
	helo    string
	// requireStartTLS refuses a server that offers no STARTTLS (a shop
	// whose PS_MAIL_SMTP_ENCRYPTION is tls).
	requireStartTLS bool
}

func newSMTPMailer(u SMTPURL, timeout time.Duration, tc *tls.Config) *smtpMailer {
	helo, err := os.Hostname()
	if err != nil || helo == "" || strings.ContainsAny(helo, " \r\n") {
		helo = "localhost"
	}
	return &smtpMailer{url: u, timeout: timeout, tls: tc, helo: helo}
}

func (m *smtpMailer) tlsConfig() *tls.Config {
	var c *tls.Config
	if m.tls != nil {
		c = m.tls.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = m.url.Host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// Send delivers msg within the mailer's timeout (or ctx's deadline, if
// sooner). Its errors name the server, never the password.
func (m *smtpMailer) Send(ctx context.Context, msg Mail) error {
	if err := m.send(ctx, msg); err != nil {
		return fmt.Errorf("send mail via %s: %w", m.url.Addr(), err)
	}
	return nil
}

func (m *smtpMailer) send(ctx context.Context, msg Mail) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	body, err := composeMail(msg, time.Now())
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.url.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// net/smtp takes no context: a cancelled ctx ends the exchange by
	// making every read and write fail at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if m.url.ImplicitTLS {
		tc := tls.Client(conn, m.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.url.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(m.helo); err != nil {
		return err
	}
	if !m.url.ImplicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.tlsConfig()); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		} else if m.requireStartTLS {
			return errors.New("the server offers no STARTTLS, and the shop's PS_MAIL_SMTP_ENCRYPTION is tls")
		}
	}
	if m.url.User != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return errors.New("the server offers no AUTH, and a user is set")
		}
		var a smtp.Auth
		switch list := strings.Fields(strings.ToUpper(mechs)); {
		case slices.Contains(list, "PLAIN"):
			// PlainAuth refuses to send the password over a plain
			// connection to any host but localhost.
			a = smtp.PlainAuth("", m.url.User, m.url.Password.Reveal(), m.url.Host)
		case slices.Contains(list, "LOGIN"):
			a = &loginAuth{user: m.url.User, password: m.url.Password.Reveal(), host: m.url.Host}
		default:
			return fmt.Errorf("the server offers AUTH %s; sfsync speaks PLAIN and LOGIN", mechs)
		}
		if err := c.Auth(a); err != nil {
			return fmt.Errorf("auth as %s: %w", m.url.User, err)
		}
	}
	if err := c.Mail(msg.From.Address); err != nil {
		return err
	}
	for _, to := range msg.To {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("recipient %s: %w", to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// loginAuth is AUTH LOGIN, which some providers offer instead of PLAIN.
// Like smtp.PlainAuth it sends the password only over TLS or to localhost.
type loginAuth struct {
	user, password, host string
}

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLocalhost(server.Name) {
		return "", nil, errors.New("unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:":
		return []byte(a.user), nil
	case "password:":
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected AUTH LOGIN challenge %q", fromServer)
}

func isLocalhost(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}

// composeMail writes msg as a MIME message: multipart/alternative with a
// quoted-printable text/plain part and a text/html part.
func composeMail(msg Mail, now time.Time) ([]byte, error) {
	if msg.From == nil || len(msg.To) == 0 {
		return nil, errors.New("compose mail: no sender or no recipient")
	}
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	to := make([]string, len(msg.To))
	for i, a := range msg.To {
		to[i] = a.String()
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := "sfsync.invalid"
	if at := strings.LastIndex(msg.From.Address, "@"); at >= 0 {
		domain = msg.From.Address[at+1:]
	}
	hdr := []struct{ k, v string }{
		{"From", msg.From.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", msg.Subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Auto-Submitted", "auto-generated"},
		{"Content-Type", `multipart/alternative; boundary="` + mw.Boundary() + `"`},
	}
	for _, h := range hdr {
		if strings.ContainsAny(h.v, "\r\n") {
			return nil, fmt.Errorf("compose mail: header %s holds a line break", h.k)
		}
		b.WriteString(h.k + ": " + h.v + "\r\n")
	}
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", msg.Text}, {"text/html", msg.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(part.body)); err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("compose mail: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose mail: %w", err)
	}
	return b.Bytes(), nil
}
