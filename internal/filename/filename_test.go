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

func TestIsOurs(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"result_acme_returns.csv": true,
		"Result_X.CSV":            true,
		"receipt_2026-11-01.csv":  true,
		"/spool/acme/result_a.gz": true,
		".result_a.csv.tmp":       true, // an upload a crash cut short
		"acme_returns.csv":        false,
		"my_result_file.csv":      false,
		"results.csv":             false,
		"result_/returns.csv":     false, // the base name decides
	} {
		if got := IsOurs(name); got != want {
			t.Errorf("IsOurs(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestResultName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"acme_returns.csv":      "result_acme_returns.csv",
		"/in/acme/returns.xlsx": "result_returns.csv",
		"returns.csv.gz":        "result_returns.csv.csv",
		"returns":               "result_returns.csv",
	} {
		if got := Result(name); got != want {
			t.Errorf("Result(%q) = %q, want %q", name, got, want)
		}
		if !IsOurs(Result(name)) {
			t.Errorf("the result name of %q is not recognised as ours", name)
		}
	}
}
