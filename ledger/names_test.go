package ledger

import (
	"testing"
	"unicode/utf8"
)

func TestStoredNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, stored string }{
		{"returns.csv", "returns.csv"},
		{"Retouren März.csv", "Retouren März.csv"},
		{"Retouren M\xe4rz.csv", `Retouren M\xe4rz.csv`},
		{`a\b`, `a\\b`},
		{`lit\xe4`, `lit\\xe4`},
		{"nul\x00", `nul\x00`},
		{"\xff\xfe", `\xff\xfe`},
	} {
		got := storedName(c.name)
		if got != c.stored || !utf8.ValidString(got) {
			t.Errorf("storedName(%q) = %q, want %q", c.name, got, c.stored)
		}
		if back := nameOf(got); back != c.name {
			t.Errorf("nameOf(%q) = %q, want %q", got, back, c.name)
		}
	}
}

func FuzzStoredNames(f *testing.F) {
	for _, s := range []string{"a", "M\xe4rz", `\x41`, `\\`, "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		s := storedName(name)
		if !utf8.ValidString(s) {
			t.Fatalf("storedName(%q) = %q is not UTF-8", name, s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				t.Fatalf("storedName(%q) holds a NUL", name)
			}
		}
		if nameOf(s) != name {
			t.Fatalf("round trip of %q gave %q", name, nameOf(s))
		}
	})
}
