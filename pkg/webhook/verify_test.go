package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/webhook"
)

// fixture is a signer and a verifier that share a key and a clock.
type fixture struct {
	clock    *clock
	signer   webhook.Signer
	verifier *webhook.Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	c := newClock(t0)
	return &fixture{
		clock:  c,
		signer: webhook.Signer{KeyID: testKeyID, Secret: testSecret, Now: c.Now},
		verifier: &webhook.Verifier{
			Keys: map[string]config.Secret{testKeyID: testSecret, "other": "another-secret"},
			Now:  c.Now,
		},
	}
}

// signed returns a request for method, url and body signed by f's signer.
func (f *fixture) signed(t testing.TB, method, url, body string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err := f.signer.Sign(req, []byte(body)); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return req
}

const testNonce = "8f14e45fceea167a5a36dedd4bea2543"

// header builds an Authorization value signed with secret over the given
// fields, independently of the package.
func header(keyID, secret, method, path string, ms int64, nonce, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%s\n%s\n%d\n%s\n%s", method, path, ms, nonce, body)
	return fmt.Sprintf("hmac v1$%s$%s$%s$%d$%s$%s", keyID, method, path, ms, nonce, hex.EncodeToString(m.Sum(nil)))
}

// validHeader is a correct header for testURL and testBody at t0.
func validHeader() string {
	return header(testKeyID, testSecret, "POST", "/V1/ORDERS/FULFILLMENT", t0.UnixMilli(), testNonce, testBody)
}

func request(method, url, authorization string) *http.Request {
	req := httptest.NewRequest(method, url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

func TestVerifyAcceptsSignedRequests(t *testing.T) {
	tests := []struct {
		name, method, url, body string
	}{
		{"post with body", "POST", testURL, testBody},
		{"empty body", "POST", "http://r.test/hook", ""},
		{"put, mixed-case path", "PUT", "http://r.test/Orders/XKQ-1042", testBody},
		{"escaped path", "POST", "http://r.test/a%2fb/c%20d?q=%24", testBody},
		{"binary body", "POST", "http://r.test/x", "\x00\xff\n$\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			req := f.signed(t, tt.method, tt.url, tt.body)
			if err := f.verifier.Verify(req, []byte(tt.body)); err != nil {
				t.Fatalf("Verify: %v (header %q)", err, req.Header.Get("Authorization"))
			}
		})
	}
}

func TestVerifyAcceptsHandMadeHeader(t *testing.T) {
	f := newFixture(t)
	if err := f.verifier.Verify(request("POST", testURL, validHeader()), []byte(testBody)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// Auth schemes are case-insensitive.
	h := "HMAC" + strings.TrimPrefix(header(testKeyID, testSecret, "POST", "/V1/ORDERS/FULFILLMENT", t0.UnixMilli(), strings.Repeat("1", 32), testBody), "hmac")
	if err := f.verifier.Verify(request("POST", testURL, h), []byte(testBody)); err != nil {
		t.Fatalf("Verify with scheme HMAC: %v", err)
	}
}

// rejectCases are requests the verifier must refuse, each with the reason.
func rejectCases() []struct {
	name    string
	req     func(t testing.TB, f *fixture) (*http.Request, []byte)
	wantErr error
} {
	ms := t0.UnixMilli()
	const path = "/V1/ORDERS/FULFILLMENT"
	good := func(t testing.TB, f *fixture) (*http.Request, []byte) {
		return f.signed(t, "POST", testURL, testBody), []byte(testBody)
	}
	withHeader := func(h string) func(testing.TB, *fixture) (*http.Request, []byte) {
		return func(testing.TB, *fixture) (*http.Request, []byte) {
			return request("POST", testURL, h), []byte(testBody)
		}
	}
	replace := func(old, new string) func(testing.TB, *fixture) (*http.Request, []byte) {
		h := validHeader()
		if !strings.Contains(h, old) {
			panic("test header has no " + old)
		}
		return withHeader(strings.Replace(h, old, new, 1))
	}
	sig := strings.Split(validHeader(), "$")[6]
	return []struct {
		name    string
		req     func(t testing.TB, f *fixture) (*http.Request, []byte)
		wantErr error
	}{
		{"changed body", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req, _ := good(t, f)
			return req, []byte(strings.Replace(testBody, "SHIPPED", "DELIVERED", 1))
		}, webhook.ErrBadSignature},
		{"body with a byte more", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req, _ := good(t, f)
			return req, []byte(testBody + "\n")
		}, webhook.ErrBadSignature},
		{"changed path", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req, body := good(t, f)
			req.URL.Path = "/v1/orders/cancel"
			return req, body
		}, webhook.ErrBadSignature},
		{"changed method", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req, body := good(t, f)
			req.Method = "PUT"
			return req, body
		}, webhook.ErrBadSignature},
		{"header path changed to the request's", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req := request("POST", "http://r.test/v1/orders/cancel", strings.Replace(validHeader(), path, "/V1/ORDERS/CANCEL", 1))
			return req, []byte(testBody)
		}, webhook.ErrBadSignature},
		{"header method changed to the request's", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			return request("PUT", testURL, strings.Replace(validHeader(), "$POST$", "$PUT$", 1)), []byte(testBody)
		}, webhook.ErrBadSignature},
		{"lower-case path in header", replace(path, strings.ToLower(path)), webhook.ErrBadSignature},
		{"timestamp changed", replace(strconv.FormatInt(ms, 10), strconv.FormatInt(ms+1, 10)), webhook.ErrBadSignature},
		{"nonce changed", replace(testNonce, strings.Repeat("a", 32)), webhook.ErrBadSignature},
		{"signature flipped", replace(sig, strings.Repeat("0", 64)), webhook.ErrBadSignature},
		{"signed with another secret", withHeader(header(testKeyID, "not-the-secret", "POST", path, ms, testNonce, testBody)), webhook.ErrBadSignature},
		{"signed with the other key's secret", withHeader(header("other", testSecret, "POST", path, ms, testNonce, testBody)), webhook.ErrBadSignature},
		{"unknown key", withHeader(header("nobody", testSecret, "POST", path, ms, testNonce, testBody)), webhook.ErrUnknownKey},
		{"key id differs in case", withHeader(header(strings.ToUpper(testKeyID), testSecret, "POST", path, ms, testNonce, testBody)), webhook.ErrUnknownKey},
		{"key with an empty secret", withHeader(header("empty", "", "POST", path, ms, testNonce, testBody)), webhook.ErrUnknownKey},
		{"6 minutes old", withHeader(header(testKeyID, testSecret, "POST", path, ms-6*60*1000, testNonce, testBody)), webhook.ErrStale},
		{"1 ms beyond the window, past", withHeader(header(testKeyID, testSecret, "POST", path, ms-5*60*1000-1, testNonce, testBody)), webhook.ErrStale},
		{"1 ms beyond the window, future", withHeader(header(testKeyID, testSecret, "POST", path, ms+5*60*1000+1, testNonce, testBody)), webhook.ErrStale},
		{"an hour ahead", withHeader(header(testKeyID, testSecret, "POST", path, ms+3600*1000, testNonce, testBody)), webhook.ErrStale},
		{"timestamp zero", withHeader(header(testKeyID, testSecret, "POST", path, 0, testNonce, testBody)), webhook.ErrStale},
		{"timestamp in seconds", withHeader(header(testKeyID, testSecret, "POST", path, ms/1000, testNonce, testBody)), webhook.ErrStale},
		{"largest timestamp", withHeader(header(testKeyID, testSecret, "POST", path, 999999999999999999, testNonce, testBody)), webhook.ErrStale},
		{"no header", withHeader(""), webhook.ErrMalformed},
		{"two headers", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req := request("POST", testURL, validHeader())
			req.Header.Add("Authorization", validHeader())
			return req, []byte(testBody)
		}, webhook.ErrMalformed},
		{"empty header", func(t testing.TB, f *fixture) (*http.Request, []byte) {
			req := request("POST", testURL, "")
			req.Header["Authorization"] = []string{""}
			return req, []byte(testBody)
		}, webhook.ErrMalformed},
		{"bearer token", withHeader("Bearer " + testSecret), webhook.ErrMalformed},
		{"six parts", withHeader(strings.Join(strings.Split(validHeader(), "$")[:6], "$")), webhook.ErrMalformed},
		{"eight parts", withHeader(validHeader() + "$x"), webhook.ErrMalformed},
		{"blog's header without signature", withHeader("hmac v1$" + testKeyID + "$POST$" + path + "$" + strconv.FormatInt(ms, 10) + "$"), webhook.ErrMalformed},
		{"wrong scheme", replace("hmac v1", "hmac-sha256 v1"), webhook.ErrMalformed},
		{"scheme without version", replace("hmac v1", "hmac"), webhook.ErrMalformed},
		{"two spaces", replace("hmac v1", "hmac  v1"), webhook.ErrMalformed},
		{"wrong version", replace("hmac v1", "hmac v2"), webhook.ErrMalformed},
		{"version upper-case", replace("hmac v1", "hmac V1"), webhook.ErrMalformed},
		{"empty key id", replace("$"+testKeyID+"$", "$$"), webhook.ErrMalformed},
		{"empty method", replace("$POST$", "$$"), webhook.ErrMalformed},
		{"empty path", replace("$"+path+"$", "$$"), webhook.ErrMalformed},
		{"timestamp not a number", replace(strconv.FormatInt(ms, 10), "yesterday"), webhook.ErrMalformed},
		{"timestamp with sign", replace(strconv.FormatInt(ms, 10), "+"+strconv.FormatInt(ms, 10)), webhook.ErrMalformed},
		{"timestamp with leading zero", replace(strconv.FormatInt(ms, 10), "0"+strconv.FormatInt(ms, 10)), webhook.ErrMalformed},
		{"timestamp of 19 digits", replace(strconv.FormatInt(ms, 10), "1000000000000000000"), webhook.ErrMalformed},
		{"timestamp RFC 3339", replace(strconv.FormatInt(ms, 10), "2023-11-14T22:13:20Z"), webhook.ErrMalformed},
		{"short nonce", replace(testNonce, testNonce[:30]), webhook.ErrMalformed},
		{"nonce not hex", replace(testNonce, strings.Repeat("g", 32)), webhook.ErrMalformed},
		{"nonce upper-case", replace(testNonce, strings.ToUpper(testNonce)), webhook.ErrMalformed},
		{"signature upper-case", replace(sig, strings.ToUpper(sig)), webhook.ErrMalformed},
		{"signature base64", replace(sig, "jIwxDp68UygsyjK6i0ddY45uRCptBPwZ/3NDHJ97SUs="), webhook.ErrMalformed},
		{"signature truncated", replace(sig, sig[:63]), webhook.ErrMalformed},
		{"signature with trailing space", replace(sig, sig+" "), webhook.ErrMalformed},
	}
}

func TestVerifyRejects(t *testing.T) {
	for _, tt := range rejectCases() {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.verifier.Keys["empty"] = ""
			req, body := tt.req(t, f)
			err := f.verifier.Verify(req, body)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v (header %q)", err, tt.wantErr, req.Header.Get("Authorization"))
			}
			for _, other := range []error{webhook.ErrMalformed, webhook.ErrUnknownKey, webhook.ErrStale, webhook.ErrBadSignature, webhook.ErrReplayed} {
				if other != tt.wantErr && errors.Is(err, other) {
					t.Fatalf("Verify = %v, which is also %v", err, other)
				}
			}
		})
	}
}

// TestErrorsNeverShowTheSecret looks for the secret, and its hex, in every
// failure's message and formatting.
func TestErrorsNeverShowTheSecret(t *testing.T) {
	leaks := []string{testSecret, hex.EncodeToString([]byte(testSecret)), "another-secret"}
	check := func(t *testing.T, err error) {
		t.Helper()
		for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err)} {
			for _, leak := range leaks {
				if strings.Contains(s, leak) {
					t.Fatalf("error shows a secret: %s", s)
				}
			}
		}
	}
	for _, tt := range rejectCases() {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			req, body := tt.req(t, f)
			err := f.verifier.Verify(req, body)
			if err == nil {
				t.Fatal("Verify succeeded")
			}
			check(t, err)
		})
	}
	t.Run("replayed", func(t *testing.T) {
		f := newFixture(t)
		req := f.signed(t, "POST", testURL, testBody)
		if err := f.verifier.Verify(req, []byte(testBody)); err != nil {
			t.Fatal(err)
		}
		err := f.verifier.Verify(req, []byte(testBody))
		if err == nil {
			t.Fatal("replay accepted")
		}
		check(t, err)
	})
	t.Run("sign errors", func(t *testing.T) {
		tests := []struct {
			keyID, url string
		}{
			{"a$b", "http://r.test/"},
			{"", "http://r.test/"},
			{"k", "http://r.test/a$b"},
		}
		for _, tt := range tests {
			err := webhook.Signer{KeyID: tt.keyID, Secret: testSecret}.Sign(httptest.NewRequest("POST", tt.url, nil), []byte(testBody))
			if err == nil {
				t.Fatalf("Sign(%q, %q) succeeded", tt.keyID, tt.url)
			}
			check(t, err)
		}
	})
}

func TestVerifyWindow(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		skew   time.Duration // signing time minus the verifier's now
		want   error
	}{
		{"now", 0, 0, nil},
		{"default window, 5 min old", 0, -5 * time.Minute, nil},
		{"default window, 5 min ahead", 0, 5 * time.Minute, nil},
		{"default window, 5 min 1 ms old", 0, -5*time.Minute - time.Millisecond, webhook.ErrStale},
		{"default window, 5 min 1 ms ahead", 0, 5*time.Minute + time.Millisecond, webhook.ErrStale},
		{"30 s window, 30 s old", 30 * time.Second, -30 * time.Second, nil},
		{"30 s window, 31 s old", 30 * time.Second, -31 * time.Second, webhook.ErrStale},
		{"30 s window, 31 s ahead", 30 * time.Second, 31 * time.Second, webhook.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.verifier.Window = tt.window
			f.clock.Set(t0.Add(tt.skew))
			req := f.signed(t, "POST", testURL, testBody)
			f.clock.Set(t0)
			if err := f.verifier.Verify(req, []byte(testBody)); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRejectsReusedNonce(t *testing.T) {
	f := newFixture(t)
	req := f.signed(t, "POST", testURL, testBody)
	if err := f.verifier.Verify(req, []byte(testBody)); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	f.clock.Set(t0.Add(4 * time.Minute))
	if err := f.verifier.Verify(req, []byte(testBody)); !errors.Is(err, webhook.ErrReplayed) {
		t.Fatalf("second Verify = %v, want ErrReplayed", err)
	}
	// The same nonce on another signed request is a replay too.
	h := header(testKeyID, testSecret, "POST", "/OTHER", t0.Add(4*time.Minute).UnixMilli(),
		strings.Split(req.Header.Get("Authorization"), "$")[5], "{}")
	if err := f.verifier.Verify(request("POST", "http://r.test/other", h), []byte("{}")); !errors.Is(err, webhook.ErrReplayed) {
		t.Fatalf("nonce reused on another request: Verify = %v, want ErrReplayed", err)
	}
	// Once the window has passed, the timestamp is what refuses it.
	f.clock.Set(t0.Add(5*time.Minute + time.Millisecond))
	if err := f.verifier.Verify(req, []byte(testBody)); !errors.Is(err, webhook.ErrStale) {
		t.Fatalf("Verify after the window = %v, want ErrStale", err)
	}
}

// TestVerifyRecordsNonceOnlyWhenSigned: requests that fail before or at the
// signature must not use up the nonce of the genuine one.
func TestVerifyRecordsNonceOnlyWhenSigned(t *testing.T) {
	f := newFixture(t)
	ms := t0.UnixMilli()
	forged := []*http.Request{
		request("POST", testURL, header(testKeyID, "guess", "POST", "/V1/ORDERS/FULFILLMENT", ms, testNonce, testBody)),
		request("POST", testURL, header("nobody", "guess", "POST", "/V1/ORDERS/FULFILLMENT", ms, testNonce, testBody)),
		request("POST", testURL, header(testKeyID, testSecret, "POST", "/ELSEWHERE", ms, testNonce, testBody)),
		request("POST", testURL, header(testKeyID, testSecret, "POST", "/V1/ORDERS/FULFILLMENT", ms-time.Hour.Milliseconds(), testNonce, testBody)),
	}
	for _, req := range forged {
		if err := f.verifier.Verify(req, []byte(testBody)); err == nil {
			t.Fatalf("forged request accepted: %q", req.Header.Get("Authorization"))
		}
	}
	if err := f.verifier.Verify(request("POST", testURL, validHeader()), []byte(testBody)); err != nil {
		t.Fatalf("genuine request after forgeries: %v", err)
	}
}

type failingStore struct{ err error }

func (s failingStore) Seen(string, time.Time) (bool, error) { return false, s.err }

func TestVerifyNonceStoreFailure(t *testing.T) {
	f := newFixture(t)
	storeErr := errors.New("redis: connection refused")
	f.verifier.Nonces = failingStore{storeErr}
	err := f.verifier.Verify(f.signed(t, "POST", testURL, testBody), []byte(testBody))
	if !errors.Is(err, storeErr) {
		t.Fatalf("Verify = %v, want the store's error", err)
	}
	for _, e := range []error{webhook.ErrMalformed, webhook.ErrUnknownKey, webhook.ErrStale, webhook.ErrBadSignature, webhook.ErrReplayed} {
		if errors.Is(err, e) {
			t.Fatalf("a store failure is classed as %v", e)
		}
	}
}

// recordingStore checks the until the Verifier asks for.
type recordingStore struct {
	webhook.MemoryNonces
	mu    sync.Mutex
	until []time.Time
}

func (s *recordingStore) Seen(nonce string, until time.Time) (bool, error) {
	s.mu.Lock()
	s.until = append(s.until, until)
	s.mu.Unlock()
	return s.MemoryNonces.Seen(nonce, until)
}

func TestVerifyRemembersNonceForTheWindow(t *testing.T) {
	f := newFixture(t)
	store := &recordingStore{}
	store.Now = f.clock.Now
	f.verifier.Nonces = store
	f.verifier.Window = 2 * time.Minute
	f.clock.Set(t0.Add(-90 * time.Second))
	req := f.signed(t, "POST", testURL, testBody)
	f.clock.Set(t0)
	if err := f.verifier.Verify(req, []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	want := t0.Add(-90 * time.Second).Add(2 * time.Minute)
	if len(store.until) != 1 || !store.until[0].Equal(want) {
		t.Fatalf("nonce kept until %v, want [%v] (signing time + window)", store.until, want)
	}
}

// TestVerifyConcurrent verifies many requests from many goroutines, each
// request several times at once: each must pass exactly once.
func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	const requests, copies = 64, 4
	reqs := make([]*http.Request, requests)
	for i := range reqs {
		reqs[i] = f.signed(t, "POST", fmt.Sprintf("http://r.test/orders/%d", i), testBody)
	}
	var ok [requests]atomic.Int32
	var replayed atomic.Int32
	var wg sync.WaitGroup
	for c := 0; c < copies; c++ {
		for i, req := range reqs {
			wg.Go(func() {
				// Each goroutine gets its own *http.Request, as a server does.
				r := req.Clone(t.Context())
				switch err := f.verifier.Verify(r, []byte(testBody)); {
				case err == nil:
					ok[i].Add(1)
				case errors.Is(err, webhook.ErrReplayed):
					replayed.Add(1)
				default:
					t.Errorf("request %d: %v", i, err)
				}
			})
		}
	}
	wg.Wait()
	for i := range ok {
		if n := ok[i].Load(); n != 1 {
			t.Errorf("request %d passed %d times, want 1", i, n)
		}
	}
	if n := replayed.Load(); n != requests*(copies-1) {
		t.Errorf("%d replays refused, want %d", n, requests*(copies-1))
	}
}

func TestVerifierKeysSeveral(t *testing.T) {
	f := newFixture(t)
	other := webhook.Signer{KeyID: "other", Secret: config.Secret("another-secret"), Now: f.clock.Now}
	req := httptest.NewRequest("POST", testURL, nil)
	if err := other.Sign(req, []byte(testBody)); err != nil {
		t.Fatal(err)
	}
	if err := f.verifier.Verify(req, []byte(testBody)); err != nil {
		t.Fatalf("second key: %v", err)
	}
}
