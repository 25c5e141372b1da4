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
	for _, c := range []struct {
		name string
		id   int64
		want string
	}{
		{"acme_returns.csv", 12, "result_acme_returns_12.csv"},
		{"/in/acme/returns.xlsx", 13, "result_returns_13.csv"},
		{"returns.csv.gz", 14, "result_returns_14.csv"}, // never result_returns.csv.csv
		{"RETURNS.CSV.ZIP", 15, "result_RETURNS_15.csv"},
		{"returns", 16, "result_returns_16.csv"},
		{"returns.2026-11.csv", 17, "result_returns.2026-11_17.csv"},
		{".csv", 18, "result_.csv_18.csv"},
		{"acme_returns.csv", 0, "result_acme_returns.csv"},
	} {
		if got := Result(c.name, c.id); got != c.want {
			t.Errorf("Result(%q, %d) = %q, want %q", c.name, c.id, got, c.want)
		}
		if !IsOurs(Result(c.name, c.id)) || !IsOurs(Receipt(c.name, c.id)) {
			t.Errorf("the result or receipt name of %q is not recognised as ours", c.name)
		}
	}
	t.Run("TwoFilesOfOneNameKeepTwoResults", func(t *testing.T) {
		if Result("returns.csv", 41) == Result("returns.csv", 42) || Result("returns.csv", 41) == Result("returns.gz", 42) {
			t.Fatal("two files share a result name")
		}
	})
	t.Run("ALongNameFitsWithItsId", func(t *testing.T) {
		got := Result(strings.Repeat("r", 300)+".csv", 1234567)
		if len(got) > 200 || !strings.HasSuffix(got, "_1234567.csv") {
			t.Fatalf("Result = %q (%d bytes)", got, len(got))
		}
	})
	if got := Receipt("junk.csv", 9); got != "receipt_junk_9.csv" {
		t.Errorf("Receipt = %q", got)
	}
}
