package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/webhook"
)

func ExampleSigner_Sign() {
	body := []byte(`{"shopOrderId":"XKQ-1042","status":"SHIPPED"}`)
	req, _ := http.NewRequest(http.MethodPost, "https://erp.example/v1/orders/fulfillment", bytes.NewReader(body))
	s := webhook.Signer{
		KeyID:  "sfsync",
		Secret: config.Secret("s3cr3t"),
		// Fixed here to show a stable header; leave both nil in real use.
		Now:  func() time.Time { return time.UnixMilli(1700000000123) },
		Rand: strings.NewReader("0123456789abcdef"),
	}
	if err := s.Sign(req, body); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Header.Get("Authorization"))
	// Output:
	// hmac v1$sfsync$POST$/V1/ORDERS/FULFILLMENT$1700000000123$30313233343536373839616263646566$49324c91a0737467598007247d548414313a36546eb45d7818ed5acab83cb3f1
}

func ExampleVerifier_Middleware() {
	v := &webhook.Verifier{Keys: map[string]config.Secret{"sfsync": "s3cr3t"}}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/orders/fulfillment", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the verified body
		fmt.Printf("handler got %s\n", body)
	})))

	body := []byte(`{"status":"SHIPPED"}`)
	req := httptest.NewRequest(http.MethodPost, "/v1/orders/fulfillment", bytes.NewReader(body))
	_ = webhook.Signer{KeyID: "sfsync", Secret: "s3cr3t"}.Sign(req, body)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// The same request again is a replay.
	req.Body = io.NopCloser(bytes.NewReader(body))
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	// Output:
	// handler got {"status":"SHIPPED"}
	// 200
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"nonce already used"}
}
