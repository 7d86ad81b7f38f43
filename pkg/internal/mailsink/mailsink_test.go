package mailsink_test

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"net/smtp"
	"testing"

	"github.com/sfsync/sfsync/pkg/internal/mailsink"
)

// A mail sent over SMTP is listed, with its subject, by the HTTP API.
func TestSinkKeepsWhatItReceives(t *testing.T) {
	sink := &mailsink.Sink{Max: 10}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := sink.SMTP()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	api := httptest.NewServer(sink.HTTP())
	t.Cleanup(api.Close)

	msg := "From: sfsync@example.com\r\nTo: merchant@example.com\r\nSubject: =?utf-8?q?sfsync_report_=E2=80=94_2_failures?=\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"order MP-10030 fail=\r\ned =E2=80=94 refund\r\n" +
		"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n--b1--\r\n"
	if err := smtp.SendMail(ln.Addr().String(), nil, "sfsync@example.com", []string{"merchant@example.com"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	resp, err := api.Client().Get(api.URL + "/api/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []mailsink.Message
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].From != "sfsync@example.com" || len(got[0].To) != 1 || got[0].To[0] != "merchant@example.com" || got[0].Subject != "sfsync report — 2 failures" ||
		got[0].Text != "order MP-10030 failed — refund" {
		t.Fatalf("messages: %+v", got)
	}
}
