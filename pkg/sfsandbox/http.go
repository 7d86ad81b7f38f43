package sfsandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// problemType is the "type" of every problem+json answer, as API Problem
// implementations of the API's generation write it.
const problemType = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{problemType, http.StatusText(status), status, detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeProblem(w, http.StatusInternalServerError, "encode answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// seconds formats d as X-RateLimit-Wait does: seconds, fractional, rounded
// up to the millisecond.
func seconds(d time.Duration) string {
	ms := math.Ceil(float64(d) / float64(time.Millisecond))
	return strconv.FormatFloat(max(ms, 1)/1000, 'f', -1, 64)
}

type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.status, w.written = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// withFaults records and logs every /v1 request, and injects latency and
// failures before next sees it.
func (s *Sandbox) withFaults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() { s.record(r, sw.status, start) }()

		s.mu.Lock()
		f := s.faults
		delay := f.Latency + f.StoreLatency[pathStore(r.URL.Path)]
		if f.LatencyJitter > 0 {
			delay += time.Duration(s.rng.Int64N(int64(f.LatencyJitter) + 1))
		}
		status := 0
		switch {
		case len(s.failNext) > 0:
			status = s.failNext[0]
			s.failNext = s.failNext[1:]
		case s.chance(f.ThrottleRate):
			status = http.StatusTooManyRequests
		case s.chance(f.ErrorRate):
			status = []int{500, 502, 503, 504}[s.rng.IntN(4)]
		}
		switch {
		case status == http.StatusTooManyRequests:
			s.counts.Throttled++
		case status >= 500:
			s.counts.Errors++
		}
		s.mu.Unlock()

		// The delay is served in full even when the client gives up, and
		// the request is then processed, as a real server would: a client
		// that timed out may still have had its operation accepted.
		if delay > 0 {
			time.Sleep(delay)
		}
		if status != 0 {
			writeInjected(sw, status, f.ThrottleWait)
			return
		}
		next.ServeHTTP(sw, r)
	})
}

func writeInjected(w http.ResponseWriter, status int, throttleWait time.Duration) {
	switch status {
	case http.StatusTooManyRequests:
		if throttleWait <= 0 {
			throttleWait = time.Second
		}
		w.Header().Set("X-RateLimit-Wait", seconds(throttleWait))
		writeProblem(w, status, "too many requests (sandbox fault)")
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html>\n<head><title>%d %s</title></head>\n<body>\n<center><h1>%d %s</h1></center>\n</body>\n</html>\n",
			status, http.StatusText(status), status, http.StatusText(status))
	default:
		writeProblem(w, status, "injected failure (sandbox fault)")
	}
}

// pathStore is the store id of a /v1/store/{id}/… path, 0 for others.
func pathStore(path string) int64 {
	rest, ok := strings.CutPrefix(path, "/v1/store/")
	if !ok {
		return 0
	}
	id, _, _ := strings.Cut(rest, "/")
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// window enforces "at most n requests in any span of per" for one token.
type window struct {
	times []time.Time // accepted requests; a ring once full
	next  int         // oldest entry once full
}

// admit reports whether a request at now keeps the rule; if not, how long
// until it would. remaining is what is left in the current span.
//
// strict counts a refused request in the window as well.
func (w *window) admit(now time.Time, r Rate, strict bool) (ok bool, wait time.Duration, remaining int) {
	if len(w.times) < r.Requests {
		w.times = append(w.times, now)
		return true, 0, r.Requests - w.inSpan(now, r.Per)
	}
	if age := now.Sub(w.times[w.next]); age < r.Per {
		if strict {
			// The refused request takes the oldest one's place: the next
			// is admitted once the new oldest leaves the span.
			w.times[w.next] = now
			w.next = (w.next + 1) % len(w.times)
			return false, r.Per - now.Sub(w.times[w.next]), 0
		}
		return false, r.Per - age, 0
	}
	w.times[w.next] = now
	w.next = (w.next + 1) % len(w.times)
	return true, 0, r.Requests - w.inSpan(now, r.Per)
}

func (w *window) inSpan(now time.Time, per time.Duration) int {
	n := 0
	for _, t := range w.times {
		if now.Sub(t) < per {
			n++
		}
	}
	return n
}

// authenticate returns the request's token if it is one the sandbox knows
// and the token's rate limit allows the request; otherwise it has answered
// 403 or 429.
func (s *Sandbox) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		writeProblem(w, http.StatusForbidden, "Missing bearer token in the Authorization header")
		return "", false
	}
	if s.owners[tok] == nil {
		writeProblem(w, http.StatusForbidden, "Invalid or expired access token")
		return "", false
	}
	now := s.now()
	s.mu.Lock()
	rl := s.faults.RateLimit
	ok, wait, remaining := true, time.Duration(0), 0
	if !rl.Unlimited() {
		win := s.windows[tok]
		if win == nil {
			win = &window{}
			s.windows[tok] = win
		}
		ok, wait, remaining = win.admit(now, rl, s.faults.Strict)
		if !ok {
			s.counts.RateLimited++
		}
	}
	s.mu.Unlock()
	if !rl.Unlimited() {
		w.Header().Set("X-RateLimit-Limit", fmt.Sprintf("%d/%s", rl.Requests, strconv.FormatFloat(rl.Per.Seconds(), 'f', -1, 64)))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	}
	if !ok {
		w.Header().Set("X-RateLimit-Wait", seconds(wait))
		writeProblem(w, http.StatusTooManyRequests, fmt.Sprintf("Rate limit of %d requests per %s exceeded", rl.Requests, rl.Per))
		return "", false
	}
	return tok, true
}

// authorizedStore authenticates the request and returns the path's store
// id if its token owns it; otherwise it has answered (403, 404 or 429).
func (s *Sandbox) authorizedStore(w http.ResponseWriter, r *http.Request) (int64, bool) {
	tok, ok := s.authenticate(w, r)
	if !ok {
		return 0, false
	}
	return s.store(w, r, tok)
}

// store returns the path's store id if the token owns it; otherwise it has
// answered 404 (not a store id) or 403.
func (s *Sandbox) store(w http.ResponseWriter, r *http.Request, token string) (int64, bool) {
	raw := r.PathValue("storeId")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Store %q not found", raw))
		return 0, false
	}
	if !s.owners[token][id] {
		writeProblem(w, http.StatusForbidden, fmt.Sprintf("Access to store %d is denied for this token", id))
		return 0, false
	}
	return id, true
}
