package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// Signer signs outgoing webhook requests. The zero values of Now and Rand
// mean time.Now and crypto/rand.Reader. A Signer is safe for concurrent use
// when Now and Rand are.
type Signer struct {
	// KeyID names the key to the receiver; printable ASCII without '$'.
	KeyID string
	// Secret is the HMAC key shared with the receiver.
	Secret config.Secret
	Now    func() time.Time
	Rand   io.Reader
}

// Sign sets req's Authorization header for body, which must be the exact
// bytes req sends; Sign reads neither req.Body nor anything else from it
// than the method and URL path. It also sets Content-Type to
// application/json when req has none.
func (s Signer) Sign(req *http.Request, body []byte) error {
	if err := checkKeyID(s.KeyID); err != nil {
		return fmt.Errorf("webhook: sign: %w", err)
	}
	if s.Secret == "" {
		return errors.New("webhook: sign: empty secret")
	}
	method, path := requestMethod(req), requestPath(req)
	if strings.Contains(method, "$") {
		return fmt.Errorf("webhook: sign: method %q contains '$'", method)
	}
	if strings.Contains(path, "$") {
		return fmt.Errorf("webhook: sign: path %q contains '$'", path)
	}
	now, rnd := time.Now, io.Reader(rand.Reader)
	if s.Now != nil {
		now = s.Now
	}
	if s.Rand != nil {
		rnd = s.Rand
	}
	var n [nonceBytes]byte
	if _, err := io.ReadFull(rnd, n[:]); err != nil {
		return fmt.Errorf("webhook: sign: read nonce: %w", err)
	}
	a := auth{KeyID: s.KeyID, Method: method, Path: path, Millis: now().UnixMilli(), Nonce: hex.EncodeToString(n[:])}
	a.Signature = signature([]byte(s.Secret.Reveal()), a.Method, a.Path, a.Millis, a.Nonce, body)
	req.Header.Set("Authorization", a.String())
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return nil
}

// checkKeyID accepts printable ASCII without '$' or space, which the header
// carries unchanged.
func checkKeyID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c == '$' || c <= ' ' || c >= 0x7f {
			return fmt.Errorf("key id %q: only printable ASCII without '$' or space", id)
		}
	}
	return nil
}

// requestMethod is the method as sent: net/http sends GET for "".
func requestMethod(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

// requestPath is the URL path as it travels, percent-encoding kept and
// without the query, upper-cased: net/http sends "/" for an empty path.
// Upper-casing also makes %2f and %2F alike.
func requestPath(req *http.Request) string {
	p := req.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	return strings.ToUpper(p)
}
