// Package csvsafe keeps spreadsheet formulas out of the CSV files returnsd
// writes: result files and receipts for brands, exports and the daily report
// for ops. A cell a spreadsheet would run as a formula (CSV injection) is
// defused with a leading apostrophe, which Excel, LibreOffice and Google
// Sheets show as text and do not display.
//
// Text goes through Cell. returnsd's own signed amounts go through Amount,
// which leaves a negative amount a number: "-80.04" is a number to every
// spreadsheet, never a formula, and written as text it would drop out of the
// very sums ops reconcile with. Every other cell that starts with - is text.
package csvsafe

import (
	"strings"
	"unicode/utf8"

	"github.com/returnsd/returnsd/money"
)

// Cell defuses a cell that a spreadsheet would run as a formula: one whose
// first character, after any spaces and line breaks, is = + - or @ (or their
// full-width forms, which some spreadsheets read the same), or one that starts
// with a tab or a carriage return. Such a cell gets a leading apostrophe; any
// other is returned as it is.
func Cell(s string) string {
	if StartsFormula(s) {
		return "'" + s
	}
	return s
}

// StartsFormula reports whether a spreadsheet could read the cell s as a
// formula: what Cell defuses.
func StartsFormula(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '\t' || s[0] == '\r' {
		return true
	}
	t := strings.TrimLeft(s, " \n")
	if t == "" {
		return false
	}
	switch t[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	r, _ := utf8.DecodeRuneInString(t)
	switch r {
	case '＝', '＋', '－', '＠': // U+FF1D, U+FF0B, U+FF0D, U+FF20
		return true
	}
	return false
}

// Amount writes one of returnsd's own amounts: two decimals and a point, a
// negative one with its leading minus ("-80.04"). It is a plain number, which
// no spreadsheet reads as a formula (see IsNumber).
func Amount(a money.Amount) string { return a.String() }

// IsNumber reports whether s is a plain decimal number, such as 12, -80.04 or
// 0.5: digits, at most one point between digits, and at most a leading minus.
// A spreadsheet reads such a cell as a number even though it starts with -.
func IsNumber(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasPoint := strings.Cut(s, ".")
	return allDigits(intPart) && intPart != "" && (!hasPoint || (frac != "" && allDigits(frac)))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Safe reports whether a cell as written can start no formula: it is a plain
// number (IsNumber), or no spreadsheet reads it as a formula (not
// StartsFormula, or already defused by Cell's apostrophe). Tests of every CSV
// writer check their cells with it.
func Safe(cell string) bool {
	return IsNumber(cell) || !StartsFormula(cell)
}
