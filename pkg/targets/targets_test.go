package targets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestValidateNamesTheVariable(t *testing.T) {
	hook := targets.WebhookConfig{URL: "https://erp.example/hook", Secret: "s", KeyID: "k", Orders: "all", ExternalID: "none", Timeout: time.Second}
	tests := []struct {
		name    string
		cfg     targets.Config
		wantVar string
	}{
		{"default", targets.Config{}, ""},
		{"shopping feed", targets.Config{Targets: "shoppingfeed"}, ""},
		{"both", targets.Config{Targets: "shoppingfeed,webhook", Hook: hook}, ""},
		{"unknown target", targets.Config{Targets: "erp"}, "TARGETS"},
		{"no url", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.URL = ""; return h }()}, "WEBHOOK_URL"},
		{"bad url", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.URL = "ftp://x"; return h }()}, "WEBHOOK_URL"},
		{"bad url with credentials", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.URL = "ftp://u:pw-url-secret@x/?k=q-url-secret"; return h }()}, "WEBHOOK_URL"},
		{"no secret", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.Secret = ""; return h }()}, "WEBHOOK_SECRET"},
		{"dollar in key id", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.KeyID = "a$b"; return h }()}, "WEBHOOK_KEY_ID"},
		{"orders", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.Orders = "some"; return h }()}, "WEBHOOK_ORDERS"},
		{"external id", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.ExternalID = "sku"; return h }()}, "WEBHOOK_EXTERNAL_ID"},
		{"missing mapping file", targets.Config{Targets: "webhook", Hook: func() targets.WebhookConfig { h := hook; h.MappingFile = "/nonexistent.json"; return h }()}, "WEBHOOK_MAPPING_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.wantVar {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), string(hook.Secret)+"\"") || strings.Contains(err.Error(), "url-secret") {
				t.Fatalf("a secret is in the error %q", err)
			}
		})
	}
}

func TestMappingFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, body := range map[string]string{"not json": `[1]`, "empty name": `{"4":""}`, "bad key": `{"shipped":"SHIPPED"}`} {
		if _, err := targets.LoadMapping(write(name+".json", body)); err == nil || !strings.Contains(err.Error(), "WEBHOOK_MAPPING_FILE") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	m, err := targets.LoadMapping(write("ok.json", `{"4":"SHIPPED","PS_OS_CANCELED":"CANCELLED","PS_OS_UNKNOWN":"X"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, store, _ := testenv.Shop(t)
	sm, err := m.Resolve(context.Background(), store, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sm.Names[shopfixture.StateShipped] != "SHIPPED" || sm.Names[shopfixture.StateCanceled] != "CANCELLED" || len(sm.Names) != 2 || sm.Shipping != shopfixture.StateShipped {
		t.Fatalf("resolved %v (shipping %d)", sm, sm.Shipping)
	}
	def, _ := targets.LoadMapping("")
	sm, err = def.Resolve(context.Background(), store, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := sm.String(); got != "2=ORDERED 3=FULFILLED 4=SHIPPED 5=DELIVERED 6=CANCELLED_MERCHANT" {
		t.Fatalf("default mapping %q", got)
	}
}
