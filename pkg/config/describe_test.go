package config_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no credentials", "nats://nats:4222", "nats://nats:4222"},
		{"password", "nats://app:s3cret@nats:4222", "nats://app:[redacted]@nats:4222"},
		{"user only", "nats://tok@nats:4222", "nats://tok@nats:4222"},
		{"query", "https://hook.example/in?token=s3cret", "https://hook.example/in?[redacted]"},
		{"both and a fragment", "https://u:s3cret@hook.example/in?sig=s3cret#s3cret", "https://u:[redacted]@hook.example/in?[redacted]"},
		{"list", "nats://a:s3cret@n1:4222, nats://a:s3cret@n2:4222", "nats://a:[redacted]@n1:4222,nats://a:[redacted]@n2:4222"},
		{"unparsable", "http://u:s3cret@[::1", "http://[redacted]"},
		{"not a URL", "127.0.0.1:4222", "127.0.0.1:4222"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := config.RedactURL(tt.in); got != tt.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

type natsPart struct {
	URL   string        `env:"NATS_URL, default=nats://127.0.0.1:4222"`
	Pass  config.Secret `env:"NATS_PASSWORD"`
	Roles string        `env:"ROLES, default=a,b"`
}

type sample struct {
	Inner  natsPart
	Poll   time.Duration  `env:"POLL_INTERVAL, default=200ms"`
	Delay  *time.Duration `env:"SHIPPED_DELAY"`
	DSN    config.Secret  `env:"MYSQL_DSN, required"`
	Hook   string         `env:"WEBHOOK_URL"`
	Ignore bool
}

func TestVars(t *testing.T) {
	got := config.Vars(&sample{})
	var names []string
	for _, v := range got {
		names = append(names, v.Name)
	}
	if strings.Join(names, " ") != "NATS_URL NATS_PASSWORD ROLES POLL_INTERVAL SHIPPED_DELAY MYSQL_DSN WEBHOOK_URL" {
		t.Fatalf("names = %v", names)
	}
	if got[2].Default != "a,b" || !got[5].Required || got[3].Default != "200ms" {
		t.Fatalf("vars = %+v", got)
	}
}

// TestDescribe is the start-up line: variables by name, secrets and URL
// credentials hidden, durations as people write them.
func TestDescribe(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	d := 2 * time.Second
	cfg := sample{
		Inner: natsPart{URL: "nats://app:pw-NATS@nats:4222", Pass: "pw-PASS"},
		Poll:  200 * time.Millisecond, Delay: &d,
		DSN:  "root:pw-DSN@tcp(db)/shop",
		Hook: "https://hook:pw-HOOK@example.com/in?key=pw-QUERY",
	}
	log.Info("starting", "config", config.Describe(&cfg))
	out := buf.String()
	for _, want := range []string{`"POLL_INTERVAL":"200ms"`, `"SHIPPED_DELAY":"2s"`, `"NATS_URL":"nats://app:[redacted]@nats:4222"`,
		`"MYSQL_DSN":"[redacted]"`, `"NATS_PASSWORD":"[redacted]"`, `"WEBHOOK_URL":"https://hook:[redacted]@example.com/in?[redacted]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "pw-") {
		t.Fatalf("a secret reached the log:\n%s", out)
	}
}

// TestRedactErr uses the error Go's HTTP client really returns for an
// unreachable URL: a url.Error that names the URL, query string included.
func TestRedactErr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	raw := "http://u:pw%2Fsecret@" + addr + "/in?token=q-secret"
	_, herr := http.Get(raw)
	if herr == nil {
		t.Fatal("a closed port answered")
	}
	got := config.RedactErr(herr, raw)
	if strings.Contains(got.Error(), "secret") || !strings.Contains(got.Error(), addr) || !strings.Contains(got.Error(), "refused") {
		t.Fatalf("RedactErr = %q (from %q)", got, herr)
	}
	var ue *url.Error
	if !errors.As(got, &ue) {
		t.Fatal("errors.As no longer finds the url.Error")
	}
	// url.Parse quotes its input.
	_, perr := url.Parse("http://u:pw-secret@host:port:bad/?q=secret")
	if got := config.RedactErr(perr, "http://u:pw-secret@host:port:bad/?q=secret"); strings.Contains(got.Error(), "secret") {
		t.Fatalf("RedactErr = %q", got)
	}
	if config.RedactErr(nil, raw) != nil {
		t.Fatal("RedactErr(nil) is not nil")
	}
}
