package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/webhook"
)

// TestSignKnownAnswer pins the header byte for byte. The expected signature
// is computed here with crypto/hmac from the string to sign written out by
// hand, and was also computed once outside Go (Python's hmac) to the literal
// below.
func TestSignKnownAnswer(t *testing.T) {
	const (
		secret = "kat-secret-7f3a"
		nonce  = "000102030405060708090a0b0c0d0e0f"
		// python3 -c 'import hmac,hashlib; print(hmac.new(b"kat-secret-7f3a",
		//   b"POST\n/V1/ORDERS/FULFILLMENT\n1700000000123\n000102030405060708090a0b0c0d0e0f\n"
		//   b"{\"shopOrderId\":\"XKQ-1042\",\"status\":\"SHIPPED\"}", hashlib.sha256).hexdigest())'
		pythonSig = "cc8c310e9ebc53282cca32ba8b475d638e6e442a6d04fc19ff73431c9f7b494b"
	)
	toSign := "POST\n/V1/ORDERS/FULFILLMENT\n1700000000123\n" + nonce + "\n" + testBody
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(toSign))
	sig := hex.EncodeToString(m.Sum(nil))
	if sig != pythonSig {
		t.Fatalf("crypto/hmac gives %s, Python gave %s: the test's own inputs differ", sig, pythonSig)
	}
	want := "hmac v1$kat-1$POST$/V1/ORDERS/FULFILLMENT$1700000000123$" + nonce + "$" + pythonSig

	req, err := http.NewRequest(http.MethodPost, "https://erp.test/v1/orders/fulfillment?x=1", strings.NewReader(testBody))
	if err != nil {
		t.Fatal(err)
	}
	s := webhook.Signer{
		KeyID:  "kat-1",
		Secret: secret,
		Now:    func() time.Time { return time.UnixMilli(1700000000123) },
		Rand:   bytes.NewReader([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 99}),
	}
	if err := s.Sign(req, []byte(testBody)); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if got := req.Header.Get("Authorization"); got != want {
		t.Fatalf("Authorization =\n%s\nwant\n%s", got, want)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", got)
	}
}

// TestSignPath checks what the header calls PATH: the path as sent,
// upper-cased, without the query.
func TestSignPath(t *testing.T) {
	tests := []struct {
		name, method, url, wantMethod, wantPath string
	}{
		{"upper-cased, no query", "POST", "http://r.test/api/Hook?a=b", "POST", "/API/HOOK"},
		{"empty path is /", "POST", "http://r.test", "POST", "/"},
		{"empty method is GET", "", "http://r.test/x", "GET", "/X"},
		{"percent-encoding kept", "PUT", "http://r.test/a%2fb/c%20d", "PUT", "/A%2FB/C%20D"},
		{"space encoded as sent", "POST", "http://r.test/a b", "POST", "/A%20B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Method = tt.method // NewRequest turns "" into GET; a literal need not
			s := webhook.Signer{KeyID: "k", Secret: "s"}
			if err := s.Sign(req, nil); err != nil {
				t.Fatalf("Sign: %v", err)
			}
			parts := strings.Split(req.Header.Get("Authorization"), "$")
			if len(parts) != 7 {
				t.Fatalf("header %q has %d parts, want 7", req.Header.Get("Authorization"), len(parts))
			}
			if parts[2] != tt.wantMethod || parts[3] != tt.wantPath {
				t.Fatalf("METHOD, PATH = %q, %q, want %q, %q", parts[2], parts[3], tt.wantMethod, tt.wantPath)
			}
		})
	}
}

func TestSignNonceIsFreshLowerHex(t *testing.T) {
	s := webhook.Signer{KeyID: "k", Secret: "s"}
	seen := map[string]bool{}
	for range 100 {
		req, _ := http.NewRequest(http.MethodPost, "http://r.test/", nil)
		if err := s.Sign(req, nil); err != nil {
			t.Fatal(err)
		}
		nonce := strings.Split(req.Header.Get("Authorization"), "$")[5]
		if b, err := hex.DecodeString(nonce); err != nil || len(b) != 16 || strings.ToLower(nonce) != nonce {
			t.Fatalf("nonce %q is not 16 bytes of lower-case hex", nonce)
		}
		if seen[nonce] {
			t.Fatalf("nonce %q repeated", nonce)
		}
		seen[nonce] = true
	}
}

func TestSignKeepsContentType(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "http://r.test/", nil)
	req.Header.Set("Content-Type", "application/vnd.erp+json")
	if err := (webhook.Signer{KeyID: "k", Secret: "s"}).Sign(req, nil); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Content-Type"); got != "application/vnd.erp+json" {
		t.Fatalf("Content-Type = %q, want the caller's", got)
	}
}

func TestSignRejects(t *testing.T) {
	tests := []struct {
		name   string
		signer webhook.Signer
		method string
		url    string
	}{
		{"key id with $", webhook.Signer{KeyID: "a$b", Secret: testSecret}, "POST", "http://r.test/"},
		{"empty key id", webhook.Signer{Secret: testSecret}, "POST", "http://r.test/"},
		{"key id with space", webhook.Signer{KeyID: "a b", Secret: testSecret}, "POST", "http://r.test/"},
		{"key id with newline", webhook.Signer{KeyID: "a\nb", Secret: testSecret}, "POST", "http://r.test/"},
		{"empty secret", webhook.Signer{KeyID: "k"}, "POST", "http://r.test/"},
		{"path with $", webhook.Signer{KeyID: "k", Secret: testSecret}, "POST", "http://r.test/a$b"},
		{"method with $", webhook.Signer{KeyID: "k", Secret: testSecret}, "PO$T", "http://r.test/"},
		{"nonce unreadable", webhook.Signer{KeyID: "k", Secret: testSecret, Rand: bytes.NewReader(make([]byte, 15))}, "POST", "http://r.test/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.signer.Sign(req, []byte(testBody))
			if err == nil {
				t.Fatalf("Sign succeeded with header %q, want an error", req.Header.Get("Authorization"))
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error %q shows the secret", err)
			}
			if h := req.Header.Get("Authorization"); h != "" {
				t.Fatalf("Authorization set to %q despite the error", h)
			}
			if tt.name == "nonce unreadable" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v does not wrap the reader's", err)
			}
		})
	}
}
