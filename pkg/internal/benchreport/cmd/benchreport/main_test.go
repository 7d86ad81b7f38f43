package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/internal/benchreport"
)

// fakeRepo writes a repository whose pkg/chaos/cmd/chaos is main (nothing
// when main is empty) and returns its root.
func fakeRepo(t *testing.T, main string) string {
	t.Helper()
	root := t.TempDir()
	if main == "" {
		return root
	}
	dir := filepath.Join(root, "pkg", "chaos", "cmd", "chaos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "pkg", "go.mod"), []byte("module example.com/pkg\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestMeasureRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("go run of a fake chaos command")
	}
	t.Setenv("GOWORK", "off")
	tests := []struct {
		name    string
		main    string
		want    map[string]int64
		wantErr string
	}{
		{
			name: "figures",
			main: `package main

import ("flag"; "fmt"; "os"; "path/filepath")

func main() {
	mode := flag.String("mode", "", "")
	bin := flag.String("bin", "", "")
	flag.Parse()
	if *mode != "rss" || filepath.Base(*bin) != "bin" { os.Exit(2) }
	fmt.Println("measuring…")
	fmt.Println("rss detector 31457280")
	fmt.Println("rss sender 41943040")
}
`,
			want: map[string]int64{"detector": 31457280, "sender": 41943040},
		},
		{
			name: "fails",
			main: `package main

import ("fmt"; "os")

func main() {
	fmt.Fprintln(os.Stderr, "start mariadb: no mariadbd in PATH")
	fmt.Fprintln(os.Stderr, "second line")
	os.Exit(1)
}
`,
			wantErr: "chaos -mode rss: exit status 1: start mariadb: no mariadbd in PATH",
		},
		{
			name:    "does not build",
			main:    "package main\n\nfunc main() { undefined() }\n",
			wantErr: "chaos -mode rss: exit status 1: chaos/cmd/chaos/main.go:3:15: undefined: undefined",
		},
		{
			name:    "does not exist yet",
			wantErr: errNoChaos.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss := measureRSS(t.Context(), fakeRepo(t, tt.main), time.Minute, io.Discard)
			if tt.wantErr != "" {
				if rss.Err == nil || rss.Err.Error() != tt.wantErr || (tt.main == "") != errors.Is(rss.Err, errNoChaos) {
					t.Fatalf("err %v, want %q", rss.Err, tt.wantErr)
				}
				return
			}
			if rss.Err != nil {
				t.Fatal(rss.Err)
			}
			if d := cmp.Diff(tt.want, rss.Bytes); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// A benchmark that never returns is killed, and its package named.
func TestBenchModuleTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("go test of a fake module")
	}
	t.Setenv("GOWORK", "off")
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":        "module example.com/stuck\n\ngo 1.26\n",
		"stuck_test.go": "package stuck\n\nimport (\"testing\"; \"time\")\n\nfunc BenchmarkFast(b *testing.B) { b.ReportMetric(7, \"x/s\") }\n\nfunc BenchmarkStuck(b *testing.B) { time.Sleep(time.Hour) }\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var all bytes.Buffer
	began := time.Now()
	err := benchModule(t.Context(), dir, 10*time.Second, io.Discard, &all)
	if err == nil {
		t.Fatal("no error from a killed run")
	}
	if took := time.Since(began); took > time.Minute {
		t.Errorf("took %s", took)
	}
	out, perr := benchreport.Parse(&all)
	if perr != nil {
		t.Fatal(perr)
	}
	if len(out.Results) != 1 || out.Results[0].Name != "BenchmarkFast" {
		t.Errorf("results %+v", out.Results)
	}
	want := []benchreport.Failure{{Pkg: "example.com/stuck", Reason: "killed after 10s"}}
	if d := cmp.Diff(want, out.Failures); d != "" {
		t.Errorf("(-want +got):\n%s\noutput:\n%s", d, all.String())
	}
}
