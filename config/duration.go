package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a span of time as a brand's contract states it: "24h", "90m",
// "7d", "2w", "3mo", "1y", or a sum such as "1y6mo" or "1h30m".
//
// Months and years are calendar units (a month is not 30 days, and "3mo" after
// November 30 is February 28 or 29), and a day is a calendar day (23 or 25
// hours across a DST change), so they are kept apart from the clock part and
// only become a point in time through AddTo in a location.
//
// Units: y (12 months), mo (month), w (7 days), d (day), h, m (minute), s.
// Amounts are non-negative integers; "0" is the zero Duration.
type Duration struct {
	Months int           // calendar months; a year is 12
	Days   int           // calendar days; a week is 7
	Time   time.Duration // clock time, added last as elapsed time
}

// ParseDuration reads the syntax described on Duration.
func ParseDuration(s string) (Duration, error) {
	var d Duration
	in := strings.TrimSpace(s)
	if in == "" {
		return d, errors.New("empty duration")
	}
	if in == "0" {
		return d, nil
	}
	for rest := in; rest != ""; {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return Duration{}, fmt.Errorf("duration %q: want a whole number before each unit (y mo w d h m s)", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1_000_000 {
			return Duration{}, fmt.Errorf("duration %q: number %s is too large", s, rest[:i])
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		switch unit {
		case "y":
			d.Months += 12 * n
		case "mo":
			d.Months += n
		case "w":
			d.Days += 7 * n
		case "d":
			d.Days += n
		case "h":
			d.Time += time.Duration(n) * time.Hour
		case "m":
			d.Time += time.Duration(n) * time.Minute
		case "s":
			d.Time += time.Duration(n) * time.Second
		case "":
			return Duration{}, fmt.Errorf("duration %q: missing unit after %d (y mo w d h m s)", s, n)
		default:
			return Duration{}, fmt.Errorf("duration %q: unknown unit %q (want y mo w d h m s)", s, unit)
		}
	}
	return d, nil
}

// MustParseDuration is ParseDuration for constants in code; it panics on a bad value.
func MustParseDuration(s string) Duration {
	d, err := ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// IsZero reports whether d is no time at all.
func (d Duration) IsZero() bool { return d == Duration{} }

// AddTo returns t plus d, reading calendar units in loc (t's own location when
// loc is nil): months first, clamped to the end of a shorter month (Jan 31 +
// 1mo = Feb 28 or 29), then days keeping the wall-clock time across DST
// changes (a time that falls in a DST gap lands after it), then the clock part as elapsed time (24h across a DST change is 24
// real hours, so 23:00 or 01:00 on the wall clock). The result is in loc.
func (d Duration) AddTo(t time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = t.Location()
	}
	t = t.In(loc)
	if d.Months != 0 || d.Days != 0 {
		y, m, day := t.Date()
		hh, mm, ss := t.Clock()
		// Month arithmetic on the first of the month cannot overflow into the
		// next one; then clamp the day to that month's length.
		first := time.Date(y, m+time.Month(d.Months), 1, 0, 0, 0, 0, loc)
		if last := daysIn(first.Year(), first.Month()); day > last {
			day = last
		}
		t = time.Date(first.Year(), first.Month(), day+d.Days, hh, mm, ss, t.Nanosecond(), loc)
		// A wall-clock time in a DST gap (02:30 on a spring-forward day) does
		// not exist; land after the gap (03:30), as calendars do.
		want := time.Date(first.Year(), first.Month(), day+d.Days, hh, mm, ss, t.Nanosecond(), time.UTC)
		got := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		if gap := want.Sub(got); gap > 0 {
			t = t.Add(gap)
		}
	}
	return t.Add(d.Time)
}

func daysIn(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Fixed returns d as elapsed time, counting a day as 24 hours. ok is false when
// d has months, whose length depends on the calendar.
func (d Duration) Fixed() (fixed time.Duration, ok bool) {
	if d.Months != 0 {
		return 0, false
	}
	return time.Duration(d.Days)*24*time.Hour + d.Time, true
}

// String formats d in the syntax ParseDuration reads, e.g. "1y6mo", "2w", "1h30m", "0".
func (d Duration) String() string {
	if d.IsZero() {
		return "0"
	}
	var b strings.Builder
	part := func(n int64, unit string) {
		if n != 0 {
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteString(unit)
		}
	}
	part(int64(d.Months/12), "y")
	part(int64(d.Months%12), "mo")
	if d.Days%7 == 0 {
		part(int64(d.Days/7), "w")
	} else {
		part(int64(d.Days), "d")
	}
	rest := d.Time
	part(int64(rest/time.Hour), "h")
	rest %= time.Hour
	part(int64(rest/time.Minute), "m")
	rest %= time.Minute
	if rest%time.Second == 0 {
		part(int64(rest/time.Second), "s")
	} else {
		b.WriteString(rest.String()) // sub-second parts only come from Go code
	}
	return b.String()
}

// UnmarshalYAML reads a scalar such as "3mo"; the error names the line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a scalar such as 24h, 7d or 3mo", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the String form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes the String form (JSON, logs).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the syntax of ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
