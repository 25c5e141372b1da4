// Package money holds amounts of money as exact integers of hundredths.
//
// Every amount returnsd handles (sale amounts, payouts, balances) has two decimal
// places in the action's currency, so an int64 of hundredths is exact, fast to
// compare and cheap to move through COPY. Arithmetic that needs more precision
// (percent payouts) happens in PostgreSQL's numeric type, never in floating point.
package money

import (
	"errors"
	"strconv"
	"strings"
)

// Amount is a quantity of money in hundredths of the currency unit (cents).
type Amount int64

// Max is the largest amount returnsd accepts: it fits numeric(14,2).
const Max Amount = 999_999_999_999_99

// Errors returned by Parse. Callers map them to row codes.
var (
	ErrSyntax    = errors.New("not a decimal number")
	ErrNegative  = errors.New("negative")
	ErrPrecision = errors.New("more than 2 decimal places")
	ErrRange     = errors.New("too large")
)

// Parse reads a non-negative decimal such as "12", "12.5", "1,234.50" or, with
// decimalComma, "12,5" and "1.234,50". Thousands separators are accepted only in
// groups of three. Trailing zeros beyond two places are accepted ("1.500");
// other digits beyond two places are an error rather than a silent rounding.
func Parse(s string, decimalComma bool) (Amount, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrSyntax
	}
	if s[0] == '-' {
		return 0, ErrNegative
	}
	if s[0] == '+' {
		s = s[1:]
	}
	point, group := byte('.'), byte(',')
	if decimalComma {
		point, group = ',', '.'
	}
	intPart, frac := s, ""
	if i := strings.IndexByte(s, point); i >= 0 {
		intPart, frac = s[:i], s[i+1:]
		if frac == "" && intPart == "" {
			return 0, ErrSyntax
		}
	}
	if strings.IndexByte(intPart, group) >= 0 {
		groups := strings.Split(intPart, string(group))
		if len(groups[0]) == 0 || len(groups[0]) > 3 {
			return 0, ErrSyntax
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, ErrSyntax
			}
		}
		intPart = strings.Join(groups, "")
	}
	if intPart == "" {
		intPart = "0"
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return 0, ErrSyntax
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 2 {
		return 0, ErrPrecision
	}
	for len(frac) < 2 {
		frac += "0"
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 12 {
		return 0, ErrRange
	}
	n, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		return 0, ErrRange
	}
	if Amount(n) > Max {
		return 0, ErrRange
	}
	return Amount(n), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats the amount with two decimal places and a point: "1234.50".
func (a Amount) String() string {
	neg := a < 0
	if neg {
		a = -a
	}
	s := strconv.FormatInt(int64(a), 10)
	for len(s) < 3 {
		s = "0" + s
	}
	s = s[:len(s)-2] + "." + s[len(s)-2:]
	if neg {
		s = "-" + s
	}
	return s
}
