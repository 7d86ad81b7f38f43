package cli_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/services/sfsync/internal/cli"
)

// TestCommandLine runs the real Run with an environment that names no
// database and no broker: help, version and usage errors must be answered
// without either (a connection attempt would fail with a MYSQL_DSN error).
func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   []string
		noStdout bool
	}{
		{name: "help", args: []string{"--help"}, stdout: []string{"usage: sfsync", "status", "version"}},
		{name: "help command", args: []string{"help"}, stdout: []string{"usage: sfsync"}},
		{name: "version", args: []string{"--version"}, stdout: []string{"sfsync version ", "commit ", "built "}},
		{name: "version command", args: []string{"version"}, stdout: []string{"sfsync version "}},
		{name: "run help lists variables", args: []string{"run", "--help"}, stdout: []string{"MYSQL_DSN", "NATS_URL", "EMBEDDED_NATS_ADDR", "ROLES"}},
		{name: "status help", args: []string{"status", "--help"}, stdout: []string{"usage: sfsync"}},
		{name: "retry help", args: []string{"retry", "-h"}, stdout: []string{"usage: sfsync"}},
		{name: "probe help", args: []string{"probe", "--help"}, stdout: []string{"usage: sfsync probe URL"}},
		{name: "unknown command", args: []string{"stauts"}, code: 2, stderr: []string{"usage: sfsync"}, noStdout: true},
		{name: "run with an argument", args: []string{"run", "now"}, code: 2, noStdout: true},
		{name: "seed with an argument", args: []string{"seed", "x"}, code: 2, noStdout: true},
		{name: "unknown flag", args: []string{"status", "--bogus"}, code: 2, stderr: []string{"-bogus"}, noStdout: true},
		{name: "stray argument", args: []string{"status", "extra"}, code: 2, noStdout: true},
		{name: "retry without target", args: []string{"retry"}, code: 2, noStdout: true},
		{name: "replay without from", args: []string{"replay"}, code: 2, noStdout: true},
		{name: "probe without url", args: []string{"probe"}, code: 2, noStdout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := cli.Run(t.Context(), tt.args, config.MapLookup(nil), &out, &errOut)
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tt.code)
			}
			if err != nil && strings.Contains(err.Error(), "MYSQL_DSN") {
				t.Fatalf("err = %v: the command read its configuration before checking its arguments", err)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if tt.noStdout && out.Len() > 0 {
				t.Errorf("a usage error printed on stdout:\n%s", out.String())
			}
		})
	}
}

// TestEmbeddedPortTaken: when EMBEDDED_NATS_ADDR's port is taken (by a
// broker the user already runs, say), the error tells them to set NATS_URL.
func TestEmbeddedPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w := newWorld(t)
	delete(w.env, "NATS_URL")
	w.env["EMBEDDED_NATS_ADDR"] = ln.Addr().String()
	w.env["DATA_DIR"] = t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut strings.Builder
	err = cli.Run(ctx, nil, config.MapLookup(w.env), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "NATS_URL=nats://"+ln.Addr().String()) || !strings.Contains(err.Error(), "EMBEDDED_NATS_ADDR") {
		t.Fatalf("err = %v, want one naming EMBEDDED_NATS_ADDR and telling to set NATS_URL=nats://%s", err, ln.Addr())
	}
}

// TestOperatorCommandsHideURLCredentials: NATS_URL and WEBHOOK_URL may
// carry a password and a query string; status and check, which report an
// unreachable broker by its URL, show neither.
func TestOperatorCommandsHideURLCredentials(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	w.env["NATS_URL"] = "nats://app:pw-NATS-secret@" + addr + "?token=q-NATS-secret"
	w.env["WEBHOOK_URL"] = "https://hook:pw-HOOK-secret@hook.example/in?token=q-HOOK-secret"
	for _, args := range [][]string{{"status"}, {"status", "--json"}, {"check"}, {"check", "--json"}, {"replay", "--from", "id:1"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := w.run(args...)
			all := out + fmt.Sprint(err)
			if !strings.Contains(all, addr) {
				t.Fatalf("%v does not name the broker it could not reach:\n%s", args, all)
			}
			if strings.Contains(all, "-secret") {
				t.Fatalf("%v shows a URL's password or query string:\n%s", args, all)
			}
		})
	}
}
