package webhook

import (
	"crypto/hmac"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

// DefaultWindow is how far a request's timestamp may be from the receiver's
// clock, either way, when Verifier.Window is zero.
const DefaultWindow = 5 * time.Minute

// Verifier checks signed webhook requests for a receiver. The zero values of
// Window and Now mean DefaultWindow and time.Now; a nil Nonces means a
// MemoryNonces of the Verifier's own, which only remembers the nonces this
// process saw: receivers running several replicas want a shared NonceStore.
// A Verifier is safe for concurrent use; do not change its fields or copy
// it after its first use.
type Verifier struct {
	// Keys maps key ids to their secrets; it is only read.
	Keys   map[string]config.Secret
	Window time.Duration
	Nonces NonceStore
	Now    func() time.Time
	// MaxBodyBytes caps the body Middleware reads; zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Log, when set, receives one line for each request Middleware rejects.
	Log *slog.Logger

	once   sync.Once
	nonces NonceStore
}

func (v *Verifier) init() {
	v.once.Do(func() {
		v.nonces = v.Nonces
		if v.nonces == nil {
			v.nonces = &MemoryNonces{Now: v.now}
		}
	})
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) window() time.Duration {
	if v.Window > 0 {
		return v.Window
	}
	return DefaultWindow
}

// Verify checks req's Authorization header against req's method and URL
// path and body, the bytes req carried (Verify does not read req.Body). It
// records the nonce only once the signature holds, so unsigned requests
// cannot use up nonces. A failed check returns an error that wraps one of
// ErrMalformed, ErrUnknownKey, ErrStale, ErrBadSignature and ErrReplayed;
// any other error comes from the NonceStore.
func (v *Verifier) Verify(req *http.Request, body []byte) error {
	v.init()
	hs := req.Header.Values("Authorization")
	if len(hs) != 1 {
		return fmt.Errorf("webhook: %d Authorization headers, want 1: %w", len(hs), ErrMalformed)
	}
	a, err := parseHeader(hs[0])
	if err != nil {
		return err
	}
	secret, ok := v.Keys[a.KeyID]
	if !ok || secret == "" {
		return fmt.Errorf("webhook: key %q: %w", a.KeyID, ErrUnknownKey)
	}
	if m, p := requestMethod(req), requestPath(req); a.Method != m || a.Path != p {
		return fmt.Errorf("webhook: signed for %q %q, request is %q %q: %w", a.Method, a.Path, m, p, ErrBadSignature)
	}
	window := v.window()
	now := v.now()
	if d := now.UnixMilli() - a.Millis; d > window.Milliseconds() || -d > window.Milliseconds() {
		return fmt.Errorf("webhook: timestamp %d ms is %d ms from now %d ms, window %s: %w",
			a.Millis, d, now.UnixMilli(), window, ErrStale)
	}
	want := signature([]byte(secret.Reveal()), a.Method, a.Path, a.Millis, a.Nonce, body)
	if !hmac.Equal([]byte(a.Signature), []byte(want)) {
		return fmt.Errorf("webhook: key %q: %w", a.KeyID, ErrBadSignature)
	}
	// The timestamp stays acceptable until Millis+window, so must the nonce
	// stay remembered.
	seen, err := v.nonces.Seen(a.Nonce, time.UnixMilli(a.Millis).Add(window))
	if err != nil {
		return fmt.Errorf("webhook: record nonce: %w", err)
	}
	if seen {
		return fmt.Errorf("webhook: nonce %s: %w", a.Nonce, ErrReplayed)
	}
	return nil
}
