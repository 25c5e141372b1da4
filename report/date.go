package report

import (
	"fmt"
	"time"
)

// Date is a calendar day, without a zone: the day a report covers, or one end
// of an export's date range. Where it begins depends on the zone it is read in
// (Start).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads a date written YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date written YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf is the calendar day of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// Yesterday is the day before now's day in loc: the day a morning report covers.
func Yesterday(now time.Time, loc *time.Location) Date {
	return DateOf(now.In(loc)).AddDays(-1)
}

// IsZero reports whether d is the zero Date, no day at all.
func (d Date) IsZero() bool { return d == Date{} }

// String writes d as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// AddDays is the day n days after d (before, for a negative n).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// Start is the first instant of d in loc: midnight, or where a clock change
// skips midnight, the first moment after it.
func (d Date) Start(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// span is the day d in loc: from its start to the next day's.
func (d Date) span(loc *time.Location) (from, to time.Time) {
	return d.Start(loc), d.AddDays(1).Start(loc)
}
