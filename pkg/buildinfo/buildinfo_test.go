package buildinfo_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinkerStamp builds a binary the way `make build` does (-ldflags -X on
// the three variables) and reads its --version: the names in the Makefile
// and in this package must agree.
func TestLinkerStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "version")
	const pkg = "github.com/sfsync/sfsync/pkg/buildinfo"
	ldflags := "-X " + pkg + ".version=v9.8.7 -X " + pkg + ".commit=abc123 -X " + pkg + ".date=2026-12-03T00:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "./testdata/version").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "version version v9.8.7, commit abc123, built 2026-12-03T00:00:00Z, go"
	if !strings.HasPrefix(string(out), want) {
		t.Fatalf("--version = %q, want it to start with %q", out, want)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"version", "commit", "date"} {
		if !strings.Contains(string(mk), "-X "+pkg+"."+v+"=") {
			t.Errorf("the Makefile does not stamp %s.%s", pkg, v)
		}
	}
}
