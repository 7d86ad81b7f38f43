package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

import ("flag"; "fmt"; "os")

func main() {
	mode := flag.String("mode", "", "")
	flag.Parse()
	if *mode != "rss" { os.Exit(2) }
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
