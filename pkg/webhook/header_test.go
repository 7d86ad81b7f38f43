package webhook

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseHeader: parseHeader never panics, fails only with ErrMalformed,
// and what it accepts formats back to the same text (the scheme's case
// aside), so the text signed is the text verified. The seeds run in every
// go test.
func FuzzParseHeader(f *testing.F) {
	const (
		nonce = "000102030405060708090a0b0c0d0e0f"
		sig   = "cc8c310e9ebc53282cca32ba8b475d638e6e442a6d04fc19ff73431c9f7b494b"
	)
	seeds := []string{
		"hmac v1$kat-1$POST$/V1/ORDERS/FULFILLMENT$1700000000123$" + nonce + "$" + sig,
		"HMAC v1$k$GET$/$0$" + nonce + "$" + sig,
		"hmac v1$k$POST$/A%2FB$999999999999999999$" + nonce + "$" + sig,
		"hmac v1$k$POST$/$1000000000000000000$" + nonce + "$" + sig,
		"hmac v1$k$POST$/$-1$" + nonce + "$" + sig,
		"hmac v1$k$POST$/$01$" + nonce + "$" + sig,
		"hmac v1$$POST$/V1/ORDERS/FULFILLMENT$1700000000123$$",
		"hmac v2$k$POST$/$1$" + nonce + "$" + sig,
		"hmac v1$k$POST$/$1$" + strings.ToUpper(nonce) + "$" + sig,
		"Bearer abc",
		"hmac",
		"hmac v1",
		"$$$$$$",
		"",
		" v1$k$POST$/$1$" + nonce + "$" + sig,
		"hmac v1$k$POST$/$1$" + nonce + "$" + sig + "$",
		"hmac v1$k\x00$POST$/$1$" + nonce + "$" + sig,
		"hmac v1$k$POST$/$1$" + nonce + "$" + sig[:63] + "\xff",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseHeader(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseHeader(%q) = %v, not ErrMalformed", h, err)
			}
			return
		}
		if got, want := a.String(), Scheme+h[len(Scheme):]; got != want {
			t.Fatalf("parseHeader(%q) formats back to %q", h, got)
		}
		if a.Millis < 0 || len(a.Nonce) != nonceLen || len(a.Signature) != sigLen {
			t.Fatalf("parseHeader(%q) accepted %+v", h, a)
		}
	})
}
