package ticketpoller

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"

	"github.com/sfsync/sfsync/pkg/config"
)

// SMTPURL is SMTP_URL: smtp://[user[:password]@]host[:port] (port 587 by
// default; STARTTLS whenever the server offers it) or smtps://… (TLS from
// the first byte; port 465 by default). User and password are
// percent-encoded. The password is a secret: String, MarshalText and
// LogValue show it as [redacted], and a parse error never quotes the URL.
type SMTPURL struct {
	// ImplicitTLS is true for smtps://.
	ImplicitTLS bool
	// Host and Port are the server's.
	Host string
	Port int
	// User is empty for a server that takes mail without AUTH.
	User     string
	Password config.Secret
}

// Set reports whether a URL was given.
func (u SMTPURL) Set() bool { return u.Host != "" }

// Addr is host:port.
func (u SMTPURL) Addr() string { return net.JoinHostPort(u.Host, strconv.Itoa(u.Port)) }

// UnmarshalText parses the URL. Errors say SMTP_URL themselves: go-envconfig
// does not name the variable of a field that decodes itself.
func (u *SMTPURL) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "" {
		*u = SMTPURL{}
		return nil
	}
	p, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes its input, password included: say less.
		return errors.New("SMTP_URL: not a URL (smtp://user:password@host:port, with user and password percent-encoded)")
	}
	var out SMTPURL
	switch p.Scheme {
	case "smtp":
		out.Port = 587
	case "smtps":
		out.ImplicitTLS, out.Port = true, 465
	default:
		return fmt.Errorf("SMTP_URL: scheme %q is not smtp or smtps", p.Scheme)
	}
	out.Host = p.Hostname()
	if out.Host == "" {
		return errors.New("SMTP_URL: no host")
	}
	if ps := p.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("SMTP_URL: port %q is not between 1 and 65535", ps)
		}
		out.Port = n
	}
	if (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.Fragment != "" || p.Opaque != "" {
		return errors.New("SMTP_URL: takes no path, query or fragment")
	}
	if p.User != nil {
		out.User = p.User.Username()
		pw, _ := p.User.Password()
		out.Password = config.Secret(pw)
	}
	if out.User == "" && out.Password != "" {
		return errors.New("SMTP_URL: a password without a user")
	}
	*u = out
	return nil
}

// String is the URL with the password redacted.
func (u SMTPURL) String() string {
	if !u.Set() {
		return ""
	}
	v := url.URL{Scheme: "smtp", Host: u.Addr()}
	if u.ImplicitTLS {
		v.Scheme = "smtps"
	}
	switch {
	case u.User != "" && u.Password != "":
		v.User = url.UserPassword(u.User, "xxxxx")
	case u.User != "":
		v.User = url.User(u.User)
	}
	return v.Redacted()
}

// MarshalText writes String, so a config printed as JSON hides the password.
func (u SMTPURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// LogValue writes String.
func (u SMTPURL) LogValue() slog.Value { return slog.StringValue(u.String()) }
