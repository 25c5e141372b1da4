package processors

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// A workbook stores a number as a binary double and shows it through a display
// format. The format is how the brand chose to look at the value, not the value:
// 12.5 formatted "0" shows 13 and is still 12.5, and 1234.5 formatted
// "$#,##0.00" shows "$1,234.50" and is still 1234.5. So a number is read as
// stored, rounded to the 15 significant digits Excel itself keeps (a computed
// 60.000000000000007 is 60, 0.1+0.2 is 0.3) and written as plain decimal text,
// without an exponent or thousands separators. Only a date format changes what a
// number means: it is a day count, and reads as an ISO 8601 date.

// excelDigits is how many significant digits Excel keeps of a number.
const excelDigits = 15

// numberText returns a numeric cell's stored value as plain decimal text, or as
// an ISO date when its style formats it as a date. ok is false when v is not a
// number at all (a damaged or hand-made file): the caller keeps it as written.
func numberText(v string, asDate, date1904 bool) (text string, ok bool) {
	v = strings.TrimSpace(v)
	if !isDecimalNumber(v) {
		return "", false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", false
	}
	if asDate {
		if d, ok := serialDate(f, date1904); ok {
			return d, true
		}
	}
	return plainDecimal(f), true
}

// isDecimalNumber reports text of the form [-+]digits[.digits][e[-+]digits],
// which is what a workbook stores. strconv.ParseFloat accepts more ("NaN",
// "0x1p-2", "1_000"), none of which a spreadsheet writes.
func isDecimalNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// plainDecimal writes f rounded to excelDigits significant digits, in plain
// decimal notation: 1e+21 is "1000000000000000000000", 1.5e-7 is "0.00000015".
func plainDecimal(f float64) string {
	if f == 0 {
		return "0"
	}
	s := strconv.FormatFloat(f, 'e', excelDigits-1, 64) // "-1.23450000000000e+03"
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	e := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	digits := strings.TrimRight(s[:1]+s[2:e], "0") // the first digit is never 0
	point := exp + 1                               // digits before the decimal point
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case point <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.WriteString(digits)
	case point >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", point-len(digits)))
	default:
		b.WriteString(digits[:point])
		b.WriteByte('.')
		b.WriteString(digits[point:])
	}
	return b.String()
}

var (
	epoch1900 = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	epoch1904 = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)
)

// serialDate reads a date serial: days since the workbook's epoch, the fraction
// being the time of day. In the 1900 system Excel counts a 29 February 1900 that
// never was (serial 60, kept for Lotus 1-2-3), so serials below it are a day off
// from the arithmetic. The day that never was is written as such, and no date
// reader accepts it. ok is false for serials no date format can show (negative,
// or after 9999).
func serialDate(serial float64, date1904 bool) (string, bool) {
	if serial < 0 || serial >= 2958466 {
		return "", false
	}
	days := math.Floor(serial)
	secs := math.Round((serial - days) * 86400)
	if secs >= 86400 {
		days, secs = days+1, 0
	}
	clock := ""
	if secs > 0 {
		clock = time.Time{}.Add(time.Duration(secs) * time.Second).Format("T15:04:05")
	}
	var d time.Time
	switch {
	case date1904:
		d = epoch1904.AddDate(0, 0, int(days))
	case days == 60:
		return "1900-02-29" + clock, true
	case days < 60:
		d = epoch1900.AddDate(0, 0, int(days)+1)
	default:
		d = epoch1900.AddDate(0, 0, int(days))
	}
	if d.Year() > 9999 {
		return "", false
	}
	return d.Format("2006-01-02") + clock, true
}

// builtinDateFormat reports the built-in number formats (ids below 164, which a
// workbook uses without spelling them out) that show a date or a time.
func builtinDateFormat(id int) bool {
	return (14 <= id && id <= 22) || (27 <= id && id <= 36) || (45 <= id && id <= 47) || (50 <= id && id <= 58)
}

// isDateFormatCode reports a custom number format that shows a date or a time: one
// with a date or time token (y m d h s) outside quoted text ("days"), brackets
// ([Red], [$€-407], [h]) and escaped characters (\-). "General" is no date.
func isDateFormatCode(code string) bool {
	for i := 0; i < len(code); i++ {
		switch c := code[i]; c {
		case '"':
			if j := strings.IndexByte(code[i+1:], '"'); j >= 0 {
				i += j + 1
			} else {
				return false
			}
		case '[':
			if j := strings.IndexByte(code[i+1:], ']'); j >= 0 {
				i += j + 1
			} else {
				return false
			}
		case '\\', '_', '*': // an escaped character, a space as wide as one, a fill
			i++
		case 'G', 'g':
			if len(code)-i >= 7 && strings.EqualFold(code[i:i+7], "general") {
				i += 6
			}
		case 'y', 'Y', 'm', 'M', 'd', 'D', 'h', 'H', 's', 'S':
			return true
		}
	}
	return false
}

// decodeEscapes decodes the _xHHHH_ escapes with which OOXML writes characters
// XML cannot hold (_x000D_ is a carriage return, _x005F_ a literal underscore).
// A NUL or a lone surrogate becomes U+FFFD: neither is text a brand meant, and
// PostgreSQL cannot store a NUL.
func decodeEscapes(s string) string {
	if !strings.Contains(s, "_x") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, ok := escapeAt(s, i)
		if !ok {
			b.WriteByte(s[i])
			i++
			continue
		}
		i += 7
		if utf16.IsSurrogate(r) {
			if low, ok := escapeAt(s, i); ok && r < 0xDC00 && 0xDC00 <= low && low <= 0xDFFF {
				r = utf16.DecodeRune(r, low)
				i += 7
			} else {
				r = utf8.RuneError
			}
		}
		if r == 0 {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

// escapeAt reads an _xHHHH_ escape at s[i:].
func escapeAt(s string, i int) (rune, bool) {
	if len(s)-i < 7 || s[i] != '_' || s[i+1] != 'x' || s[i+6] != '_' {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
