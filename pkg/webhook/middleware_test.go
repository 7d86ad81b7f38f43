package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sfsync/sfsync/pkg/webhook"
)

// echo answers with the body it read, so tests see what next got.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if r.ContentLength != int64(len(b)) {
		http.Error(w, "content length differs from the body", http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
})

// TestMiddlewareRoundTrip signs with the Signer, sends over a real
// connection and verifies with the Middleware.
func TestMiddlewareRoundTrip(t *testing.T) {
	f := newFixture(t)
	var got []byte
	srv := httptest.NewServer(f.verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	})))
	t.Cleanup(srv.Close)

	send := func(body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/Orders/fulfillment?attempt=1", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.signer.Sign(req, []byte(body)); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, body := range []string{testBody, "", strings.Repeat("x", 100_000)} {
		got = nil
		if resp := send(body); resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d, want 200: %s", resp.StatusCode, b)
		}
		if string(got) != body {
			t.Fatalf("next read %d bytes, want the %d sent", len(got), len(body))
		}
	}
}

func TestMiddleware(t *testing.T) {
	tests := []struct {
		name       string
		req        func(t testing.TB, f *fixture) *http.Request
		wantStatus int
		wantDetail string // "" for a request next must get
		wantBody   string // what next must read
	}{
		{"good request", func(t testing.TB, f *fixture) *http.Request {
			return f.signed(t, "POST", testURL, testBody)
		}, http.StatusOK, "", testBody},
		{"changed body", func(t testing.TB, f *fixture) *http.Request {
			req := f.signed(t, "POST", testURL, testBody)
			req.Body = io.NopCloser(strings.NewReader(testBody + " "))
			return req
		}, http.StatusUnauthorized, "bad signature", ""},
		{"unsigned", func(t testing.TB, f *fixture) *http.Request {
			return httptest.NewRequest("POST", testURL, strings.NewReader(testBody))
		}, http.StatusUnauthorized, "malformed authorization", ""},
		{"unknown key", func(t testing.TB, f *fixture) *http.Request {
			req := httptest.NewRequest("POST", testURL, strings.NewReader(testBody))
			req.Header.Set("Authorization", header("nobody", "x", "POST", "/V1/ORDERS/FULFILLMENT", t0.UnixMilli(), testNonce, testBody))
			return req
		}, http.StatusUnauthorized, "unknown key id", ""},
		{"stale", func(t testing.TB, f *fixture) *http.Request {
			req := f.signed(t, "POST", testURL, testBody)
			f.clock.Set(t0.Add(webhook.DefaultWindow + 1e6))
			return req
		}, http.StatusUnauthorized, "timestamp outside the window", ""},
		{"too large", func(t testing.TB, f *fixture) *http.Request {
			body := strings.Repeat("x", webhook.DefaultMaxBodyBytes+1)
			return f.signed(t, "POST", testURL, body)
		}, http.StatusRequestEntityTooLarge, "body too large", ""},
		{"largest body", func(t testing.TB, f *fixture) *http.Request {
			return f.signed(t, "POST", testURL, strings.Repeat("x", webhook.DefaultMaxBodyBytes))
		}, http.StatusOK, "", strings.Repeat("x", webhook.DefaultMaxBodyBytes)},
		{"unreadable body", func(t testing.TB, f *fixture) *http.Request {
			req := f.signed(t, "POST", testURL, testBody)
			req.Body = io.NopCloser(io.MultiReader(strings.NewReader("{"), errReader{}))
			return req
		}, http.StatusBadRequest, "read body", ""},
		{"nonce store down", func(t testing.TB, f *fixture) *http.Request {
			f.verifier.Nonces = failingStore{errors.New("store down")}
			return f.signed(t, "POST", testURL, testBody)
		}, http.StatusServiceUnavailable, "cannot check the nonce", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var logs bytes.Buffer
			f.verifier.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			req := tt.req(t, f)
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				echo(w, r)
			})
			rec := httptest.NewRecorder()
			f.verifier.Middleware(next).ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantDetail == "" {
				if !called || rec.Body.String() != tt.wantBody {
					t.Fatalf("next called %v, read %d bytes, want the %d sent", called, rec.Body.Len(), len(tt.wantBody))
				}
				return
			}
			if called {
				t.Fatal("next was called for a rejected request")
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q, want application/problem+json", ct)
			}
			var p struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if p.Status != tt.wantStatus || p.Detail != tt.wantDetail {
				t.Fatalf("problem %+v, want status %d detail %q", p, tt.wantStatus, tt.wantDetail)
			}
			if tt.wantStatus == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != "hmac" {
				t.Fatalf("WWW-Authenticate = %q, want hmac", rec.Header().Get("WWW-Authenticate"))
			}
			for _, out := range []string{rec.Body.String(), logs.String()} {
				if strings.Contains(out, testSecret) {
					t.Fatalf("the secret shows in %s", out)
				}
			}
			if !strings.Contains(logs.String(), `"msg":"webhook request rejected"`) {
				t.Fatalf("no log line for the rejection: %s", logs.String())
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
