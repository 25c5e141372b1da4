// Package safetext makes text that comes from outside (a brand's cell, a remote
// file name, a library's error quoting either) safe to store and to print: valid
// UTF-8 that PostgreSQL accepts, on one line, and shown in the order it is
// written, so a name cannot forge a line of a report or reorder what ops read.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s with each byte that is not UTF-8 written as \xNN, each
// control character as its Go escape (\t, \n, \x1b, \u0085), and each
// bidirectional formatting or line-separating character as \uXXXX. Text that
// needs none of it is returned as it is, without allocating; applying Printable
// twice changes nothing more.
func Printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && unsafe(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafe(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				if r == utf8.RuneError || unsafe(r) {
					return false // RuneError: invalid UTF-8, or a U+FFFD written as such; either is escaped or kept by Printable
				}
			}
			return true
		}
	}
	return true
}

// unsafe reports a rune that must not be shown as it is: a control character, a
// bidirectional formatting character (which reorders the text around it, the
// "Trojan Source" trick), or a line or paragraph separator.
func unsafe(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, 0x202a <= r && r <= 0x202e, 0x2066 <= r && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}
