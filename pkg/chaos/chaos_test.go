package chaos_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/chaos"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestChaosSmall is make chaos at a tenth of its size: 500 orders on 3
// shops through 2 detectors, 3 senders and 2 ticket pollers run as
// processes, with worker kills, a broker restart, a broker wipe and a
// MariaDB restart on the default seed.
func TestChaosSmall(t *testing.T) {
	if _, err := exec.LookPath("nats-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no nats-server binary in PATH (apt-get install nats-server)")
		}
		t.Skip("no nats-server binary in PATH (apt-get install nats-server)")
	}
	o := chaos.SmallOptions()
	o.BinDir = buildServices(t)
	o.WorkDir = t.TempDir()
	var out strings.Builder
	o.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := chaos.Run(ctx, o)
	if err != nil {
		t.Fatalf("chaos run: %v\n%s", err, out.String())
	}
	var table strings.Builder
	rep.Print(&table)
	t.Log(out.String() + table.String())
	if !rep.Passed {
		for _, f := range []string{"sender-1.log", "detector-1.log", "ticketpoller-1.log"} {
			if b, err := os.ReadFile(filepath.Join(o.WorkDir, f)); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("last lines of %s:\n%s", f, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
		t.Fatal("the chaos run failed its checks (table above)")
	}
	if rep.Kills == 0 || rep.Restarts == "" {
		t.Fatalf("no fault was played: kills %d, restarts %q", rep.Kills, rep.Restarts)
	}
}

// buildServices builds the four binaries the run starts, as make build
// does (the build cache makes it quick after make build).
func buildServices(t *testing.T) string {
	t.Helper()
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatal("no go.work above the test's directory")
		}
		root = parent
	}
	bin := t.TempDir()
	for _, s := range []string{"detector", "sender", "ticketpoller", "sfsandbox"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, s), ".")
		cmd.Dir = filepath.Join(root, "services", s)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", s, err, out)
		}
	}
	return bin
}
