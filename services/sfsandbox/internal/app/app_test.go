package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunServesUntilCanceled(t *testing.T) {
	addr := freeAddr(t)
	env := map[string]string{
		"SANDBOX_ADDR":                 addr,
		"SANDBOX_STORES":               "secret-token-xyz:1001",
		"SANDBOX_TICKET_SCHEDULED_FOR": "0s",
		"SANDBOX_TICKET_RUNNING_FOR":   "0s",
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, nil, config.MapLookup(env), logs) }()

	base := "http://" + addr
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	req, _ := http.NewRequest("POST", base+"/v1/store/1001/order/ship", strings.NewReader(`{"order":[{"id":1,"carrier":"C","trackingNumber":"T"}]}`))
	req.Header.Set("Authorization", "Bearer secret-token-xyz")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST ship: %d", res.StatusCode)
	}
	res, err = http.Get(base + "/_sandbox/operations")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"operation":"ship"`) {
		t.Errorf("/_sandbox/operations = %s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	out := logs.String()
	for _, want := range []string{`"msg":"starting"`, `"msg":"listening"`, `"msg":"request"`, `"path":"/v1/store/1001/order/ship"`, `"status":202`} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret-token-xyz") {
		t.Errorf("logs show the token:\n%s", out)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		env     map[string]string
		varName string
	}{
		{map[string]string{"SANDBOX_STORES": "tok"}, "SANDBOX_STORES"},
		{map[string]string{"SANDBOX_ERROR_RATE": "2"}, "SANDBOX_ERROR_RATE"},
		{map[string]string{"SANDBOX_ACCOUNTS": "u:p:unknown"}, "SANDBOX_ACCOUNTS"},
		{map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, "SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.varName, func(t *testing.T) {
			tt.env["SANDBOX_ADDR"] = "127.0.0.1:0"
			err := Run(t.Context(), nil, config.MapLookup(tt.env), io.Discard)
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.varName {
				t.Errorf("Run = %v, want an error naming %s", err, tt.varName)
			}
		})
	}
	err := Run(t.Context(), nil, config.MapLookup(map[string]string{"LOG_FORMAT": "xml", "SANDBOX_ADDR": "127.0.0.1:0"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "LOG_FORMAT") {
		t.Errorf("bad LOG_FORMAT: %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	testenv.CommandLine(t, "sfsandbox", func(ctx context.Context, args []string, stdout io.Writer) error {
		return Run(ctx, args, config.MapLookup(map[string]string{"SANDBOX_ADDR": "127.0.0.1:0"}), stdout)
	}, "SANDBOX_ADDR", "SANDBOX_STORES")
}
