package prestashop

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestColumnText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"ascii kept", "shipped", 10, "shipped"},
		{"ascii cut", "0123456789abc", 10, "0123456789"},
		{"accents kept", "expédiée à Zürich", 100, "expédiée à Zürich"},
		{"accents cut on a character", "ééééé", 3, "ééé"},
		{"4-byte emoji replaced", "colis 📦 parti", 100, "colis \uFFFD parti"},
		{"latin-1 bytes replaced", "r\xe9ponse \xabinvalide\xbb", 100, "r\uFFFDponse \uFFFDinvalide\uFFFD"},
		{"truncated multibyte sequence replaced", "ab\xe2\x82", 100, "ab\uFFFD\uFFFD"},
		{"valid U+FFFD kept", "a\uFFFDb", 3, "a\uFFFDb"},
		{"emoji cut counts as one character", "📦📦📦", 2, "\uFFFD\uFFFD"},
		{"empty", "", 5, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ColumnText(tc.in, tc.max)
			if got != tc.want {
				t.Fatalf("ColumnText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > tc.max {
				t.Fatalf("ColumnText(%q, %d) = %q: not valid or too long", tc.in, tc.max, got)
			}
			for _, r := range got {
				if r > 0xFFFF {
					t.Fatalf("ColumnText(%q) kept %U, outside utf8mb3", tc.in, r)
				}
			}
		})
	}
}

func TestColumnTextLongMessage(t *testing.T) {
	in := strings.Repeat("é", TextChars+10)
	got := ColumnText(in, TextChars)
	if n := utf8.RuneCountInString(got); n != TextChars {
		t.Fatalf("kept %d characters, want %d", n, TextChars)
	}
	if len(got) > 65535 {
		t.Fatalf("%d bytes do not fit a TEXT column", len(got))
	}
}
