// Package mailsink is the mail catcher of `make compose-test`: an SMTP
// server that keeps every message it receives and lists them over HTTP,
// standing in for mailpit, whose image cannot be pulled where the test
// runs. It is not for production: no TLS, no authentication, no limit
// beyond Max messages.
package mailsink

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// Message is one received mail.
type Message struct {
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Subject  string    `json:"subject"`
	Received time.Time `json:"received"`
	Size     int       `json:"size"`
	// Text is the text/plain part, decoded (quoted-printable or base64).
	Text string `json:"text"`
	// Raw is the message as received.
	Raw string `json:"raw"`
}

// Sink keeps the messages that its SMTP server receives.
type Sink struct {
	// Max is the number of messages kept; older ones are dropped.
	Max  int
	mu   sync.Mutex
	msgs []Message
}

// Messages returns the received messages, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

func (s *Sink) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	if s.Max > 0 && len(s.msgs) > s.Max {
		s.msgs = s.msgs[len(s.msgs)-s.Max:]
	}
}

// SMTP returns the SMTP server that feeds s; serve it on a listener.
func (s *Sink) SMTP() *gosmtp.Server {
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &session{sink: s}, nil }))
	srv.Domain = "mailsink"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	return srv
}

// HTTP serves GET /api/messages (the messages as JSON, oldest first) and
// GET /readyz.
func (s *Sink) HTTP() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/messages", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Messages())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

type session struct {
	sink *Sink
	from string
	to   []string
}

func (x *session) Mail(from string, _ *gosmtp.MailOptions) error { x.from = from; return nil }
func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: x.from, To: x.to, Received: time.Now().UTC(), Size: len(b), Raw: string(b)}
	if msg, err := mail.ReadMessage(bytes.NewReader(b)); err == nil {
		dec := new(mime.WordDecoder)
		if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err == nil {
			m.Subject = subj
		} else {
			m.Subject = msg.Header.Get("Subject")
		}
		m.Text = plainText(textproto.MIMEHeader(msg.Header), msg.Body)
	}
	x.sink.add(m)
	return nil
}

// plainText returns the first text/plain part of a body with header h,
// decoded; "" when there is none.
func plainText(h textproto.MIMEHeader, body io.Reader) string {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart() // decodes quoted-printable
			if err != nil {
				return ""
			}
			if t := plainText(p.Header, p); t != "" {
				return t
			}
		}
	}
	if mt != "text/plain" {
		return ""
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// ListenAndServe serves SMTP on smtpAddr and HTTP on httpAddr until one
// fails.
func (s *Sink) ListenAndServe(smtpAddr, httpAddr string) error {
	ln, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- s.SMTP().Serve(ln) }()
	go func() {
		srv := &http.Server{Addr: httpAddr, Handler: s.HTTP(), ReadHeaderTimeout: 5 * time.Second}
		errc <- srv.ListenAndServe()
	}()
	err = <-errc
	if errors.Is(err, gosmtp.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
