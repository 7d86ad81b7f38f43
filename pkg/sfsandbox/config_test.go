package sfsandbox

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/config"
)

func load(t *testing.T, env map[string]string) (Config, error) {
	t.Helper()
	var c Config
	err := config.Load(t.Context(), config.MapLookup(env), &c)
	return c, err
}

func TestLoadDefaultsMatchDefaultConfig(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultConfig(), c); diff != "" {
		t.Errorf("env defaults differ from DefaultConfig (-DefaultConfig +env):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}

func TestLoadEveryVariable(t *testing.T) {
	c, err := load(t, map[string]string{
		"SANDBOX_ADDR":                        "127.0.0.1:9999",
		"SANDBOX_STORES":                      "tok1:1001|1002, tok2:2001",
		"SANDBOX_ACCOUNTS":                    "shop:pw:tok1,other:pw2:tok:with:colons",
		"SANDBOX_ORDERS":                      "1001:5001@amazon#AMZ-1|5002,2001:7001#REF",
		"SANDBOX_TICKET_SCHEDULED_FOR":        "100ms",
		"SANDBOX_TICKET_RUNNING_FOR":          "2s",
		"SANDBOX_ALLOW_SHIP_WITHOUT_TRACKING": "true",
		"SANDBOX_REFUND_UNSUPPORTED_CHANNELS": "cdiscount,manomano",
		"SANDBOX_MAX_ORDERS_PER_REQUEST":      "50",
		"SANDBOX_SEED":                        "7",
		"SANDBOX_LATENCY":                     "20ms",
		"SANDBOX_LATENCY_JITTER":              "5ms",
		"SANDBOX_ERROR_RATE":                  "0.1",
		"SANDBOX_THROTTLE_RATE":               "0.2",
		"SANDBOX_THROTTLE_WAIT":               "1.5s",
		"SANDBOX_RATE_LIMIT":                  "20/2",
		"SANDBOX_TICKET_FAILURE_RATE":         "0.3",
		"SANDBOX_TICKET_CANCEL_RATE":          "0.05",
		"SANDBOX_STUCK_RATE":                  "0.4",
		"SANDBOX_STUCK_FOR":                   "1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: "127.0.0.1:9999",
		Stores: Tokens{
			{Token: "tok1", StoreIDs: []int64{1001, 1002}},
			{Token: "tok2", StoreIDs: []int64{2001}},
		},
		Accounts: Accounts{
			{Username: "shop", Password: "pw", Token: "tok1"},
			{Username: "other", Password: "pw2", Token: "tok:with:colons"},
		},
		Orders: Orders{
			1001: {{ID: 5001, ChannelName: "amazon", Reference: "AMZ-1"}, {ID: 5002}},
			2001: {{ID: 7001, Reference: "REF"}},
		},
		ScheduledFor: 100 * time.Millisecond, RunningFor: 2 * time.Second,
		AllowShipWithoutTracking:  true,
		RefundUnsupportedChannels: []string{"cdiscount", "manomano"},
		MaxOrdersPerRequest:       50,
		Seed:                      7,
		Faults: Faults{
			Latency: 20 * time.Millisecond, LatencyJitter: 5 * time.Millisecond,
			ErrorRate: 0.1, ThrottleRate: 0.2, ThrottleWait: 1500 * time.Millisecond,
			RateLimit:         Rate{Requests: 20, Per: 2 * time.Second},
			TicketFailureRate: 0.3, TicketCancelRate: 0.05, StuckRate: 0.4, StuckFor: time.Minute,
		},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := c.Validate(); !errors.As(err, new(*config.VarError)) || !strings.Contains(err.Error(), "SANDBOX_ACCOUNTS") {
		t.Errorf("Validate = %v, want the account whose token owns no store named", err)
	}
}

func TestLoadNamesTheVariable(t *testing.T) {
	tests := []struct {
		env     map[string]string
		varName string
	}{
		{map[string]string{"SANDBOX_STORES": "tok"}, "SANDBOX_STORES"},
		{map[string]string{"SANDBOX_STORES": "tok:abc"}, "SANDBOX_STORES"},
		{map[string]string{"SANDBOX_STORES": "tok:"}, "SANDBOX_STORES"},
		{map[string]string{"SANDBOX_ACCOUNTS": "user:pw"}, "SANDBOX_ACCOUNTS"},
		{map[string]string{"SANDBOX_ORDERS": "1001:x"}, "SANDBOX_ORDERS"},
		{map[string]string{"SANDBOX_ORDERS": "store:1"}, "SANDBOX_ORDERS"},
		{map[string]string{"SANDBOX_LATENCY": "soon"}, "SANDBOX_LATENCY"},
		{map[string]string{"SANDBOX_ERROR_RATE": "often"}, "SANDBOX_ERROR_RATE"},
	}
	for _, tt := range tests {
		t.Run(tt.varName+"="+strings.Join(values(tt.env), ""), func(t *testing.T) {
			_, err := load(t, tt.env)
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.varName {
				t.Errorf("err = %v, want one naming %s", err, tt.varName)
			}
		})
	}
}

// go-envconfig does not name the field of a struct-typed decoder such as
// Rate, so its errors carry "rate limit" instead.
func TestLoadBadRateLimit(t *testing.T) {
	for _, v := range []string{"fast", "10/0s", "0.5/1s"} {
		_, err := load(t, map[string]string{"SANDBOX_RATE_LIMIT": v})
		if err == nil || !strings.Contains(err.Error(), "rate limit") {
			t.Errorf("SANDBOX_RATE_LIMIT=%s: err = %v, want one saying rate limit", v, err)
		}
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		varName string
	}{
		{"no store", func(c *Config) { c.Stores = nil }, "SANDBOX_STORES"},
		{"empty token", func(c *Config) { c.Stores[0].Token = "" }, "SANDBOX_STORES"},
		{"store id zero", func(c *Config) { c.Stores[0].StoreIDs = []int64{0} }, "SANDBOX_STORES"},
		{"account of unknown token", func(c *Config) { c.Accounts = Accounts{{Username: "u", Password: "p", Token: "x"}} }, "SANDBOX_ACCOUNTS"},
		{"account twice", func(c *Config) {
			c.Accounts = Accounts{{Username: "u", Password: "p", Token: "t"}, {Username: "u", Password: "q", Token: "t"}}
		}, "SANDBOX_ACCOUNTS"},
		{"orders of an unknown store", func(c *Config) { c.Orders = Orders{9: {{ID: 1}}} }, "SANDBOX_ORDERS"},
		{"negative scheduled", func(c *Config) { c.ScheduledFor = -1 }, "SANDBOX_TICKET_SCHEDULED_FOR"},
		{"negative running", func(c *Config) { c.RunningFor = -1 }, "SANDBOX_TICKET_RUNNING_FOR"},
		{"negative max orders", func(c *Config) { c.MaxOrdersPerRequest = -1 }, "SANDBOX_MAX_ORDERS_PER_REQUEST"},
		{"rate above 1", func(c *Config) { c.Faults.ErrorRate = 1.5 }, "SANDBOX_ERROR_RATE"},
		{"negative rate", func(c *Config) { c.Faults.TicketFailureRate = -0.1 }, "SANDBOX_TICKET_FAILURE_RATE"},
		{"negative latency", func(c *Config) { c.Faults.Latency = -time.Second }, "SANDBOX_LATENCY"},
		{"rate limit without period", func(c *Config) { c.Faults.RateLimit = Rate{Requests: 3} }, "SANDBOX_RATE_LIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Stores: Tokens{{Token: "t", StoreIDs: []int64{1}}}}
			if err := c.Validate(); err != nil {
				t.Fatalf("base config invalid: %v", err)
			}
			tt.change(&c)
			err := c.Validate()
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.varName {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.varName)
			}
		})
	}
}

func TestConfigLogsNoToken(t *testing.T) {
	c := DefaultConfig()
	c.Accounts = Accounts{{Username: "u", Password: "hunter2", Token: "sandbox-token"}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"sandbox-token", "hunter2"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("config JSON shows %q: %s", secret, b)
		}
	}
}

func TestRateText(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		out  string
	}{
		{"10/2s", Rate{10, 2 * time.Second}, "10/2s"},
		{"10/2", Rate{10, 2 * time.Second}, "10/2s"},
		{"5/0.5", Rate{5, 500 * time.Millisecond}, "5/500ms"},
		{" 600 / 1m ", Rate{600, time.Minute}, "600/1m0s"},
		{"none", Rate{}, "none"},
		{"", Rate{}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var r Rate
			if err := r.UnmarshalText([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if r != tt.want || r.String() != tt.out {
				t.Errorf("%q → %+v %q, want %+v %q", tt.in, r, r.String(), tt.want, tt.out)
			}
		})
	}
	for _, bad := range []string{"10", "x/2s", "0/2s", "10/-1s", "10/2h", "10/NaN", "-3/1s"} {
		var r Rate
		if err := r.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q parsed as %+v", bad, r)
		}
	}
}
