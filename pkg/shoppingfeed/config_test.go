package shoppingfeed

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/config"
)

func TestConfigLoad(t *testing.T) {
	var c Config
	if err := config.Load(t.Context(), config.MapLookup(nil), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{BaseURL: DefaultBaseURL, Timeout: DefaultTimeout, RateLimit: DefaultRateLimit, MaxRetries: 3, MaxOrdersPerRequest: DefaultMaxOrdersPerRequest}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, Config{MaxRetries: 3}.withDefaults()); diff != "" {
		t.Errorf("withDefaults differs from the env defaults (-want +got):\n%s", diff)
	}

	c = Config{}
	if err := config.Load(t.Context(), config.MapLookup(map[string]string{
		"SF_API_URL": "http://127.0.0.1:8090", "SF_TIMEOUT": "3s", "SF_RATE_LIMIT": "none",
		"SF_MAX_RETRIES": "0", "SF_MAX_ORDERS_PER_REQUEST": "50",
	}), &c); err != nil {
		t.Fatal(err)
	}
	want = Config{BaseURL: "http://127.0.0.1:8090", Timeout: 3 * time.Second, RateLimit: "none", MaxRetries: 0, MaxOrdersPerRequest: 50}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		c       Config
		varName string
	}{
		{"not a URL", Config{BaseURL: "api.shopping-feed.com"}, "SF_API_URL"},
		{"ftp", Config{BaseURL: "ftp://x"}, "SF_API_URL"},
		{"credentials in URL", Config{BaseURL: "https://u:p@x"}, "SF_API_URL"},
		{"query in URL", Config{BaseURL: "https://x/?token=1"}, "SF_API_URL"},
		{"negative timeout", Config{Timeout: -time.Second}, "SF_TIMEOUT"},
		{"rate without period", Config{RateLimit: "10"}, "SF_RATE_LIMIT"},
		{"rate zero requests", Config{RateLimit: "0/2s"}, "SF_RATE_LIMIT"},
		{"rate zero period", Config{RateLimit: "10/0"}, "SF_RATE_LIMIT"},
		{"rate words", Config{RateLimit: "fast"}, "SF_RATE_LIMIT"},
		{"negative retries", Config{MaxRetries: -1}, "SF_MAX_RETRIES"},
		{"absurd retries", Config{MaxRetries: 100}, "SF_MAX_RETRIES"},
		{"negative orders", Config{MaxOrdersPerRequest: -5}, "SF_MAX_ORDERS_PER_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.varName {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.varName)
			}
			if _, err := New(tt.c, nil, nil); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config (all defaults): %v", err)
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want rate
	}{
		{"10/2s", rate{10, 2 * time.Second}},
		{"10/2", rate{10, 2 * time.Second}},
		{"3/0.5", rate{3, 500 * time.Millisecond}},
		{" 600 / 1m ", rate{600, time.Minute}},
		{"none", rate{}},
		{"NONE", rate{}},
		{"0", rate{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRate(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseRate(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}
