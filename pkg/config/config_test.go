package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
)

type inner struct {
	URL      string        `env:"URL, default=nats://x"`
	Replicas int           `env:"REPLICAS, default=1"`
	Password config.Secret `env:"PASSWORD"`
}

type cfg struct {
	Inner    inner         `env:", prefix=NATS_"`
	Interval time.Duration `env:"POLL_INTERVAL, default=200ms"`
	DSN      config.Secret `env:"MYSQL_DSN, required"`
}

func TestLoadNamesTheVariable(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"bad duration", map[string]string{"MYSQL_DSN": "x", "POLL_INTERVAL": "soon"}, "POLL_INTERVAL"},
		{"bad nested int", map[string]string{"MYSQL_DSN": "x", "NATS_REPLICAS": "three"}, "NATS_REPLICAS"},
		{"missing required", map[string]string{}, "MYSQL_DSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c cfg
			err := config.Load(context.Background(), config.MapLookup(tt.env), &c)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			var ve *config.VarError
			if !errors.As(err, &ve) {
				t.Fatalf("error %q is not a *VarError", err)
			}
			if ve.Var != tt.wantVar {
				t.Fatalf("error names %q, want %q (%v)", ve.Var, tt.wantVar, err)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("message %q does not name %s", err, tt.wantVar)
			}
		})
	}
}

func TestLoadDefaultsAndValues(t *testing.T) {
	var c cfg
	env := map[string]string{"MYSQL_DSN": "root:pw@tcp(db)/shop", "NATS_REPLICAS": "3"}
	if err := config.Load(context.Background(), config.MapLookup(env), &c); err != nil {
		t.Fatal(err)
	}
	if c.Inner.Replicas != 3 || c.Inner.URL != "nats://x" || c.Interval != 200*time.Millisecond {
		t.Fatalf("unexpected config %+v", c)
	}
	if c.DSN.Reveal() != "root:pw@tcp(db)/shop" {
		t.Fatalf("DSN = %q", c.DSN.Reveal())
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := config.Secret("hunter2")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("config", "token", s, "cfg", struct{ T config.Secret }{s})
	j, _ := json.Marshal(struct{ T config.Secret }{s})
	outs := []string{buf.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), string(j)}
	for _, out := range outs {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
	}
}
