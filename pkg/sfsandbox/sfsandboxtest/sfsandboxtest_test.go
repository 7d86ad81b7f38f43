package sfsandboxtest

import (
	"net/http"
	"strings"
	"testing"
)

func TestNewServesOnLoopback(t *testing.T) {
	srv := New(t, Config())
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want a loopback address", srv.URL)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v1/store/1001/order/deliver", strings.NewReader(`{"order":[{"id":1}]}`))
	req.Header.Set("Authorization", "Bearer "+Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ops := srv.Operations(); len(ops) != 1 || ops[0].StoreID != StoreID {
		t.Errorf("operations = %+v", ops)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(srv.URL + "/v1/ping"); err == nil {
		t.Error("the sandbox still answers after Close")
	}
}
