package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// Var is one environment variable a configuration struct reads.
type Var struct {
	Name     string
	Default  string
	Required bool
	// value is the field, for Describe.
	value reflect.Value
}

// Vars lists the environment variables cfg (a struct or a pointer to one,
// tagged for go-envconfig) reads, in field order, each once.
func Vars(cfg any) []Var {
	var out []Var
	seen := map[string]bool{}
	walk(reflect.ValueOf(cfg), "", func(v Var) {
		if !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, v)
		}
	})
	return out
}

func walk(v reflect.Value, prefix string, visit func(Var)) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v = reflect.New(v.Type().Elem()).Elem()
			continue
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		key, opts := parseTag(f.Tag.Get("env"))
		fv := v.Field(i)
		if key == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !isDecoder(f.Type) {
				walk(fv, prefix+opts["prefix"], visit)
			}
			continue
		}
		_, required := opts["required"]
		def := ""
		if _, d, ok := strings.Cut(f.Tag.Get("env"), "default="); ok {
			def = d // go-envconfig reads the rest of the tag, commas included
		}
		visit(Var{Name: prefix + key, Default: def, Required: required, value: fv})
	}
}

// Describe returns cfg's effective values as one slog group keyed by
// environment variable, for the start-up log line: secrets redacted (a
// Secret, a type's own LogValue, a URL's password and query string) and
// durations written as Go does (200ms).
func Describe(cfg any) slog.Value {
	vars := Vars(cfg)
	attrs := make([]slog.Attr, 0, len(vars))
	for _, v := range vars {
		attrs = append(attrs, slog.String(v.Name, display(v.value)))
	}
	return slog.GroupValue(attrs...)
}

var durationType = reflect.TypeFor[time.Duration]()

func display(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	x := v.Interface()
	switch x := x.(type) {
	case slog.LogValuer:
		return x.LogValue().Resolve().String()
	case string:
		return RedactURL(x)
	case fmt.Stringer:
		return x.String()
	}
	if v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(x)
}

// RedactURL returns s with a URL's password and query string hidden
// (nats://app:[redacted]@nats:4222, https://hook.example/x?[redacted]); a
// string that is not a URL with a scheme comes back unchanged, unless it
// cannot be parsed at all, when only its scheme is shown.
func RedactURL(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	// A comma-separated list of URLs (NATS_URL may be one).
	if strings.Contains(s, ",") {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			parts[i] = RedactURL(strings.TrimSpace(p))
		}
		return strings.Join(parts, ",")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error quotes its input; say only what is safe.
		return scheme + "://" + redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	}
	query := u.RawQuery != "" || u.ForceQuery
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	out := strings.Replace(u.String(), ":REDACTED@", ":"+redacted+"@", 1)
	if query {
		out += "?" + redacted
	}
	return out
}

// RedactErr returns err with rawURL's password and query string hidden from
// its message (the whole URL too, when it is quoted as given), for errors of
// calls that were handed a URL: Go's url.Error, for one, prints the URL it
// failed on. errors.Is and errors.As still see err.
func RedactErr(err error, rawURL string) error {
	if err == nil || !strings.Contains(rawURL, "://") {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), rawURL, RedactURL(rawURL))
	if u, perr := url.Parse(rawURL); perr == nil {
		var hide []string
		if p, ok := u.User.Password(); ok && p != "" {
			hide = append(hide, p, url.QueryEscape(p), url.PathEscape(p))
		}
		if u.RawQuery != "" {
			hide = append(hide, u.RawQuery)
		}
		if u.Fragment != "" {
			hide = append(hide, u.Fragment)
		}
		for _, h := range hide {
			msg = strings.ReplaceAll(msg, h, redacted)
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
