package filename

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFit(t *testing.T) {
	t.Run("KeepsANameThatFits", func(t *testing.T) {
		if got := Fit("returns.csv", 200); got != "returns.csv" {
			t.Fatalf("Fit = %q", got)
		}
	})
	t.Run("CutsALongNameKeepingItsExtension", func(t *testing.T) {
		name := strings.Repeat("r", 300) + ".csv"
		got := Fit(name, 200)
		if len(got) != 200 || !strings.HasSuffix(got, ".csv") || !strings.HasPrefix(got, "rrrr") || !strings.Contains(got, "~") {
			t.Fatalf("Fit = %q (%d bytes)", got, len(got))
		}
	})
	t.Run("GivesTwoLongNamesTwoNames", func(t *testing.T) {
		a := Fit(strings.Repeat("x", 300)+"-a.csv", 100)
		b := Fit(strings.Repeat("x", 300)+"-b.csv", 100)
		if a == b {
			t.Fatalf("both fit to %q", a)
		}
	})
	t.Run("CutsAtACharacterBoundary", func(t *testing.T) {
		got := Fit(strings.Repeat("ä", 200)+".csv", 101)
		if !utf8.ValidString(got) || len(got) > 101 {
			t.Fatalf("Fit = %q (%d bytes)", got, len(got))
		}
	})
	t.Run("DropsAnExtensionThatIsNotOne", func(t *testing.T) {
		got := Fit("a."+strings.Repeat("b", 300), 50)
		if len(got) > 50 || !strings.HasPrefix(got, "a.bbb") {
			t.Fatalf("Fit = %q", got)
		}
	})
}
