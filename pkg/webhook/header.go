package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Scheme and Version are the first part of the Authorization header,
// "hmac v1".
const (
	Scheme  = "hmac"
	Version = "v1"
)

const (
	nonceBytes = 16
	nonceLen   = 2 * nonceBytes
	sigLen     = 2 * sha256.Size
	// maxMillisDigits keeps every accepted timestamp below 10^18, so that
	// differences of two of them never overflow an int64.
	maxMillisDigits = 18
)

// auth is a parsed Authorization header.
type auth struct {
	KeyID     string
	Method    string
	Path      string
	Millis    int64
	Nonce     string
	Signature string
}

// String formats a as the Authorization header's value.
func (a auth) String() string {
	return Scheme + " " + Version + "$" + a.KeyID + "$" + a.Method + "$" + a.Path + "$" +
		strconv.FormatInt(a.Millis, 10) + "$" + a.Nonce + "$" + a.Signature
}

// parseHeader parses an Authorization header's value. Every error wraps
// ErrMalformed. It never panics, whatever the input.
func parseHeader(h string) (auth, error) {
	parts := strings.Split(h, "$")
	if len(parts) != 7 {
		return auth{}, fmt.Errorf("webhook: %d $-separated parts, want 7: %w", len(parts), ErrMalformed)
	}
	scheme, version, ok := strings.Cut(parts[0], " ")
	// Auth schemes are case-insensitive (RFC 9110, 11.1); the version is not.
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return auth{}, fmt.Errorf("webhook: scheme is not %q: %w", Scheme, ErrMalformed)
	}
	if version != Version {
		return auth{}, fmt.Errorf("webhook: version is not %q: %w", Version, ErrMalformed)
	}
	a := auth{KeyID: parts[1], Method: parts[2], Path: parts[3], Nonce: parts[5], Signature: parts[6]}
	switch {
	case a.KeyID == "":
		return auth{}, fmt.Errorf("webhook: empty key id: %w", ErrMalformed)
	case a.Method == "":
		return auth{}, fmt.Errorf("webhook: empty method: %w", ErrMalformed)
	case a.Path == "":
		return auth{}, fmt.Errorf("webhook: empty path: %w", ErrMalformed)
	case !isMillis(parts[4]):
		return auth{}, fmt.Errorf("webhook: timestamp is not a decimal of at most %d digits: %w", maxMillisDigits, ErrMalformed)
	case len(a.Nonce) != nonceLen || !isLowerHex(a.Nonce):
		return auth{}, fmt.Errorf("webhook: nonce is not %d lower-case hex digits: %w", nonceLen, ErrMalformed)
	case len(a.Signature) != sigLen || !isLowerHex(a.Signature):
		return auth{}, fmt.Errorf("webhook: signature is not %d lower-case hex digits: %w", sigLen, ErrMalformed)
	}
	ms, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil { // unreachable after isMillis; kept so a change cannot make it silent
		return auth{}, fmt.Errorf("webhook: timestamp: %w", ErrMalformed)
	}
	a.Millis = ms
	return a, nil
}

// signature returns the lower-case hex HMAC-SHA256 of the string to sign.
func signature(secret []byte, method, path string, millis int64, nonce string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(method + "\n" + path + "\n" + strconv.FormatInt(millis, 10) + "\n" + nonce + "\n"))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// isMillis reports whether s is a timestamp as strconv.FormatInt writes it,
// no sign and no leading zero, so that the text signed is the text verified.
func isMillis(s string) bool {
	if s == "" || len(s) > maxMillisDigits || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
