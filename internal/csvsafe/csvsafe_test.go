package csvsafe

import (
	"testing"

	"github.com/returnsd/returnsd/money"
)

func TestCell(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"LeavesPlainTextAlone", "ORD-1", "ORD-1"},
		{"LeavesEmptyAlone", "", ""},
		{"DefusesAFormula", "=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
		{"DefusesAPlus", "+1+2", "'+1+2"},
		{"DefusesAMinus", "-2+3", "'-2+3"},
		{"DefusesANegativeNumberWrittenAsText", "-5", "'-5"},
		{"DefusesAnAt", "@SUM(A1)", "'@SUM(A1)"},
		{"DefusesALeadingTab", "\t=1", "'\t=1"},
		{"DefusesALeadingCarriageReturn", "\r=1", "'\r=1"},
		{"DefusesAFormulaAfterSpaces", "  =1+1", "'  =1+1"},
		{"DefusesAFormulaAfterALineBreak", "\n=1+1", "'\n=1+1"},
		{"DefusesAFullWidthEquals", "＝1+1", "'＝1+1"},
		{"DefusesAFullWidthAt", "＠SUM(A1)", "'＠SUM(A1)"},
		{"LeavesAFormulaCharacterInsideAlone", "a=b", "a=b"},
		{"LeavesSpacesAlone", "   ", "   "},
		{"LeavesAnApostropheAlone", "'=1", "'=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Cell(tt.in); got != tt.want {
				t.Errorf("Cell(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !Safe(Cell(tt.in)) {
				t.Errorf("Cell(%q) = %q is not Safe", tt.in, Cell(tt.in))
			}
		})
	}
}

func TestAmountIsANumberEvenWhenNegative(t *testing.T) {
	for _, a := range []money.Amount{0, 5, -8004, 123456789} {
		s := Amount(a)
		if !IsNumber(s) || !Safe(s) {
			t.Errorf("Amount(%d) = %q: not a plain number", a, s)
		}
	}
	if Amount(-8004) != "-80.04" {
		t.Errorf("Amount(-8004) = %q", Amount(-8004))
	}
}

func TestIsNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"12": true, "-80.04": true, "0.5": true, "-0": true,
		"": false, "-": false, "-.5": false, "1.": false, "1.2.3": false, "-2+3": false, "1e5": false, "- 1": false,
	} {
		if got := IsNumber(s); got != want {
			t.Errorf("IsNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzCellIsSafe(f *testing.F) {
	for _, s := range []string{"", "=1", "-1", " +1", "\t", "＝", "a", "'=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c := Cell(s); !Safe(c) {
			t.Errorf("Cell(%q) = %q can start a formula", s, c)
		}
	})
}
