package ops

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOneLineStripsTerminalEscapes(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "A tracking number is required", "A tracking number is required"},
		{"colour", "\x1b[31mred\x1b[0m text", "red text"},
		{"clear screen and home", "\x1b[2J\x1b[Hfake status", "fake status"},
		{"title by OSC with BEL", "\x1b]0;owned\x07after", "after"},
		{"OSC 8 link with ST", "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"C1 CSI", "a\u009b31mb", "a b"},
		{"reset", "\x1bcafter", "after"},
		{"controls and newlines", "line1\r\nline2\tx\x00y\x7fz\bq", "line1 line2 x y z q"},
		{"invalid bytes", "Donn\xe9es", "Donn\uFFFDes"},
		{"unterminated", "ok \x1b[31", "ok"},
		{"long", strings.Repeat("é", 200), strings.Repeat("é", 120) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := oneLine(tc.in, 120)
			if got != tc.want {
				t.Fatalf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
			for _, r := range got {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
					t.Fatalf("control %U left in %q", r, got)
				}
			}
			if !utf8.ValidString(got) {
				t.Fatalf("%q is not UTF-8", got)
			}
		})
	}
}

// FuzzOneLine: whatever the input, nothing a terminal acts on is left.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"\x1b[2J", "\x1b]0;x\x07", "a\u009bb", "\xff\xfe", "ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := oneLine(s, 120)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > 121 {
			t.Fatalf("%q", got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Fatalf("control %U left in %q", r, got)
			}
		}
	})
}
