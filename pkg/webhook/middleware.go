package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// DefaultMaxBodyBytes is the largest body Middleware reads when
// Verifier.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// Middleware verifies each request before next sees it. It reads the body
// (at most MaxBodyBytes), verifies it, and hands next the request with the
// same body to read again. It answers a request that fails verification
// with 401 and an application/problem+json naming the reason, a body too
// large with 413, one it could not read with 400, and a NonceStore failure
// with 503 so that the sender retries.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := v.MaxBodyBytes
		if limit <= 0 {
			limit = DefaultMaxBodyBytes
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				v.reject(w, r, http.StatusRequestEntityTooLarge, "body too large", err)
				return
			}
			v.reject(w, r, http.StatusBadRequest, "read body", err)
			return
		}
		if err := v.Verify(r, body); err != nil {
			if reason := reason(err); reason != "" {
				w.Header().Set("WWW-Authenticate", Scheme)
				v.reject(w, r, http.StatusUnauthorized, reason, err)
				return
			}
			v.reject(w, r, http.StatusServiceUnavailable, "cannot check the nonce", err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		next.ServeHTTP(w, r)
	})
}

// reason returns the sentinel error's text for a verification failure, ""
// for any other error. The answer gives only this, not the details.
func reason(err error) string {
	for _, e := range []error{ErrMalformed, ErrUnknownKey, ErrStale, ErrBadSignature, ErrReplayed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return ""
}

func (v *Verifier) reject(w http.ResponseWriter, r *http.Request, status int, detail string, err error) {
	if v.Log != nil {
		v.Log.WarnContext(r.Context(), "webhook request rejected",
			"method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail})
}
