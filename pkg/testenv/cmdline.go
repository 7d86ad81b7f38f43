package testenv

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sfsync/sfsync/pkg/buildinfo"
)

// RunFunc is a binary's run function with its environment already bound
// (tests bind an empty one, so that anything that tries to start fails).
type RunFunc func(ctx context.Context, args []string, stdout io.Writer) error

// CommandLine checks the command line every worker binary shares: --version
// and --help answer on stdout and exit 0 without starting anything (run
// gets a cancelled context and an environment without MYSQL_DSN, so that
// starting shows as an error or as log lines), and an unknown argument is
// a usage error (exit 2). wantVars are variables --help must list.
func CommandLine(t *testing.T, name string, run RunFunc, wantVars ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		args []string
		want []string
		code int
	}{
		{"version", []string{"--version"}, []string{name + " version ", "commit ", "built "}, 0},
		{"help", []string{"--help"}, append([]string{name + ": ", "usage: " + name, "LOG_LEVEL"}, wantVars...), 0},
		{"short help", []string{"-h"}, []string{"usage: " + name}, 0},
		{"unknown argument", []string{"--bogus"}, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := run(ctx, tt.args, &out)
			var stderr strings.Builder
			if code := buildinfo.Exit(name, err, &stderr); code != tt.code {
				t.Fatalf("exit %d (%v), want %d", code, err, tt.code)
			}
			if tt.code == 2 {
				var ue *buildinfo.UsageError
				if !errors.As(err, &ue) || !strings.Contains(stderr.String(), "--bogus") {
					t.Fatalf("err = %v, stderr %q: want a usage error naming --bogus", err, stderr.String())
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), `"msg"`) {
				t.Errorf("stdout holds log lines, so %v started something:\n%s", tt.args, out.String())
			}
		})
	}
}
