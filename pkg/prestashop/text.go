package prestashop

import (
	"strings"
	"unicode/utf8"
)

// Sizes, in characters, of the text columns sfsync writes whose type gives
// them a size in bytes: the module's tables are utf8 (utf8mb3, three bytes
// a character at most), so a TEXT holds 65,535 / 3 characters for certain
// and a MEDIUMTEXT 16,777,215 / 3.
const (
	TextChars       = 65535 / 3
	MediumTextChars = 16777215 / 3
	// errorChars caps sfsync_error (TEXT): the reason a person reads in
	// the report, not a dump.
	errorChars = 2000
)

// ColumnText makes any text safe to write to a text column of maxChars
// characters in a utf8 (utf8mb3) or utf8mb4 table, in strict SQL mode:
// bytes that are not valid UTF-8 and characters outside the Basic
// Multilingual Plane (4-byte characters such as emoji, which a utf8mb3
// column refuses) become U+FFFD, and the result is cut to maxChars
// characters, never inside one. Every text the store writes goes through
// it, so a hostile or foreign message (a Latin-1 error page, an emoji in
// a product name) can never make a write fail.
func ColumnText(s string, maxChars int) string {
	if fitsColumn(s, maxChars) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), 3*maxChars))
	n := 0
	for _, r := range s { // an invalid byte comes out as utf8.RuneError
		if n == maxChars {
			break
		}
		if r > 0xFFFF {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// fitsColumn reports whether s is valid UTF-8 of 3-byte characters at most
// and no longer than maxChars characters: the common case, left untouched.
func fitsColumn(s string, maxChars int) bool {
	n := 0
	for i := 0; i < len(s); n++ {
		if n == maxChars {
			return false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || size == 4 {
			return false // an invalid byte, or a character utf8mb3 refuses
		}
		i += size
	}
	return true
}
