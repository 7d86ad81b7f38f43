// Package config loads a service's configuration from environment variables
// with go-envconfig, and names the variable in every error.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// LookupFunc returns an environment variable's value and whether it is set;
// os.LookupEnv is one, and tests pass a map's.
type LookupFunc func(key string) (string, bool)

// MapLookup returns a LookupFunc over m.
func MapLookup(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Load fills cfg, a pointer to a struct tagged for go-envconfig, from lookup.
// An error names the environment variable at fault.
func Load(ctx context.Context, lookup LookupFunc, cfg any) error {
	err := envconfig.ProcessWith(ctx, &envconfig.Config{
		Target:   cfg,
		Lookuper: envconfig.LookuperFunc(lookup),
	})
	if err == nil {
		return nil
	}
	return fmt.Errorf("config: %w", nameVariable(reflect.TypeOf(cfg), err))
}

// nameVariable rewrites go-envconfig's "Field: Field: cause" error chain,
// which names Go fields, into "ENV_VAR: cause".
func nameVariable(t reflect.Type, err error) error {
	msg := err.Error()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	prefix := ""
	rest := msg
	for t.Kind() == reflect.Struct {
		name, tail, ok := strings.Cut(rest, ": ")
		if !ok {
			break
		}
		f, found := t.FieldByName(name)
		if !found {
			break
		}
		key, opts := parseTag(f.Tag.Get("env"))
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && key == "" && !isDecoder(f.Type) {
			prefix += opts["prefix"]
			t = ft
			rest = tail
			continue
		}
		if key == "" {
			break
		}
		return &VarError{Var: prefix + key, Err: errors.New(tail), cause: err}
	}
	// go-envconfig names the variable itself for missing required values.
	if errors.Is(err, envconfig.ErrMissingRequired) {
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			return &VarError{Var: msg[i+2:], Err: errors.New("required but not set"), cause: err}
		}
	}
	return err
}

func isDecoder(t reflect.Type) bool {
	dec := reflect.TypeOf((*envconfig.Decoder)(nil)).Elem()
	return t.Implements(dec) || reflect.PointerTo(t).Implements(dec)
}

func parseTag(tag string) (string, map[string]string) {
	parts := strings.Split(tag, ",")
	opts := map[string]string{}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		opts[k] = v
	}
	return strings.TrimSpace(parts[0]), opts
}

// VarError is a configuration error about one environment variable.
type VarError struct {
	Var   string
	Err   error
	cause error
}

func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }

// Unwrap lets errors.Is see go-envconfig's sentinel errors.
func (e *VarError) Unwrap() []error { return []error{e.Err, e.cause} }

// Invalid returns the error for a value that parsed but breaks a rule.
func Invalid(variable, format string, args ...any) error {
	return &VarError{Var: variable, Err: fmt.Errorf(format, args...)}
}

// Secret is a string that never shows itself in logs, errors or fmt output.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value, for the one place that must use it.
func (s Secret) Reveal() string { return string(s) }

// String redacts the secret for fmt.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts the secret for slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret when a config is printed as JSON.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
