package safetext

import (
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"KeepsPlainText", "returns.csv", "returns.csv"},
		{"KeepsLettersOfAnyScript", "Retouren März ½ 返品.csv", "Retouren März ½ 返品.csv"},
		{"KeepsAReplacementCharacterWrittenAsSuch", "a\uFFFDb", "a\uFFFDb"},
		{"EscapesBytesThatAreNotUTF8", "Con\xffentType M\xe4rz", `Con\xffentType M\xe4rz`},
		{"EscapesATabAndANewlineSoANameCannotForgeALine", "x.csv\tCOMPLETED\nevil.csv", `x.csv\tCOMPLETED\nevil.csv`},
		{"EscapesOtherControlCharacters", "a\x00b\x1b[31mc\x7fd\u0085e", `a\x00b\x1b[31mc\x7fd\u0085e`},
		{"EscapesBidiOverridesSoTextReadsInItsOrder", "invoice\u202Egpj.csv", `invoice\u202egpj.csv`},
		{"EscapesIsolatesAndMarks", "\u2066a\u2069\u200f\u061c", `\u2066a\u2069\u200f\u061c`},
		{"EscapesLineSeparators", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"EscapesACutOffRune", "abc\xe2\x82", `abc\xe2\x82`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Printable(c.in)
			if got != c.want {
				t.Fatalf("Printable(%q) = %q, want %q", c.in, got, c.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("Printable(%q) = %q is not valid UTF-8", c.in, got)
			}
			if again := Printable(got); again != got {
				t.Fatalf("Printable is not idempotent: %q then %q", got, again)
			}
		})
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "a\tb", "\xff", "\u202e", "März"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Printable(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Printable(%q) = %q is not valid UTF-8", s, got)
		}
		for _, r := range got {
			if unsafe(r) {
				t.Fatalf("Printable(%q) = %q keeps %U", s, got, r)
			}
		}
		if Printable(got) != got {
			t.Fatalf("Printable(%q) is not idempotent", s)
		}
	})
}

func BenchmarkPrintableOfPlainText(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Printable("Amount \"12,50\" is not a number; amounts are read with a decimal point")
	}
}
