package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		in   string
		want Duration
		str  string
	}{
		{"24h", Duration{Time: 24 * time.Hour}, "24h"},
		{"90m", Duration{Time: 90 * time.Minute}, "1h30m"},
		{"45s", Duration{Time: 45 * time.Second}, "45s"},
		{"7d", Duration{Days: 7}, "1w"},
		{"10d", Duration{Days: 10}, "10d"},
		{"2w", Duration{Days: 14}, "2w"},
		{"3mo", Duration{Months: 3}, "3mo"},
		{"1y", Duration{Months: 12}, "1y"},
		{"1y6mo", Duration{Months: 18}, "1y6mo"},
		{"1w2d12h", Duration{Days: 9, Time: 12 * time.Hour}, "9d12h"},
		{"0", Duration{}, "0"},
		{" 3mo ", Duration{Months: 3}, "3mo"},
	} {
		t.Run("Reads"+tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
			if again, err := ParseDuration(got.String()); err != nil || again != got {
				t.Errorf("String() %q does not read back: %+v, %v", got.String(), again, err)
			}
		})
	}

	for _, tt := range []struct {
		name, in, want string
	}{
		{"RejectsEmpty", "", "empty duration"},
		{"RejectsAMissingUnit", "30", "missing unit"},
		{"RejectsAnUnknownUnit", "3months", `unknown unit "months"`},
		{"RejectsFractions", "1.5h", "unknown unit"},
		{"RejectsNegatives", "-1d", "want a whole number"},
		{"RejectsSpacesInside", "3 mo", "unknown unit"},
		{"RejectsHugeNumbers", "99999999999d", "too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseDuration(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDuration(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestDurationAddTo(t *testing.T) {
	t.Parallel()

	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(loc *time.Location, y int, m time.Month, d, hh, mm int) time.Time {
		return time.Date(y, m, d, hh, mm, 0, 0, loc)
	}

	for _, tt := range []struct {
		name string
		d    string
		from time.Time
		loc  *time.Location
		want time.Time
	}{
		{"ClampsJan31PlusAMonthToFeb28", "1mo", at(time.UTC, 2025, 1, 31, 10, 0), time.UTC, at(time.UTC, 2025, 2, 28, 10, 0)},
		{"ClampsJan31PlusAMonthToFeb29InALeapYear", "1mo", at(time.UTC, 2024, 1, 31, 10, 0), time.UTC, at(time.UTC, 2024, 2, 29, 10, 0)},
		{"ClampsNov30PlusThreeMonthsToFebEnd", "3mo", at(time.UTC, 2025, 11, 30, 0, 0), time.UTC, at(time.UTC, 2026, 2, 28, 0, 0)},
		{"KeepsTheDayWhenTheMonthIsLongEnough", "1mo", at(time.UTC, 2025, 1, 15, 0, 0), time.UTC, at(time.UTC, 2025, 2, 15, 0, 0)},
		{"ClampsFeb29PlusAYear", "1y", at(time.UTC, 2024, 2, 29, 0, 0), time.UTC, at(time.UTC, 2025, 2, 28, 0, 0)},
		{"AddsDaysAfterClampingMonths", "1mo1d", at(time.UTC, 2025, 1, 31, 0, 0), time.UTC, at(time.UTC, 2025, 3, 1, 0, 0)},
		// 2025-03-09 02:00 EST → 03:00 EDT: that day has 23 hours.
		{"KeepsTheWallClockForADayAcrossSpringForward", "1d", at(ny, 2025, 3, 8, 12, 0), ny, at(ny, 2025, 3, 9, 12, 0)},
		{"AddsElapsedHoursAcrossSpringForward", "24h", at(ny, 2025, 3, 8, 12, 0), ny, at(ny, 2025, 3, 9, 13, 0)},
		// 2025-11-02 02:00 EDT → 01:00 EST: that day has 25 hours.
		{"KeepsTheWallClockForADayAcrossFallBack", "1d", at(ny, 2025, 11, 1, 12, 0), ny, at(ny, 2025, 11, 2, 12, 0)},
		{"AddsElapsedHoursAcrossFallBack", "24h", at(ny, 2025, 11, 1, 12, 0), ny, at(ny, 2025, 11, 2, 11, 0)},
		{"KeepsTheWallClockForAMonthAcrossDST", "1mo", at(ny, 2025, 2, 15, 9, 0), ny, at(ny, 2025, 3, 15, 9, 0)},
		// 03:00 UTC on Mar 31 is still Mar 30 in New York: the month is added there.
		{"ReadsCalendarUnitsInTheGivenLocation", "1mo", at(time.UTC, 2025, 3, 31, 3, 0), ny, at(ny, 2025, 4, 30, 23, 0)},
		{"UsesTheTimesOwnLocationWhenLocIsNil", "1mo", at(ny, 2025, 1, 31, 12, 0), nil, at(ny, 2025, 2, 28, 12, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := MustParseDuration(tt.d).AddTo(tt.from, tt.loc)
			if !got.Equal(tt.want) {
				t.Errorf("%s.AddTo(%s) = %s, want %s", tt.d, tt.from, got, tt.want)
			}
		})
	}

	t.Run("LandsAfterTheGapWhenTheWallClockDoesNotExist", func(t *testing.T) {
		t.Parallel()
		// 02:30 does not exist on 2025-03-09 in New York; Go moves it forward.
		got := MustParseDuration("1d").AddTo(at(ny, 2025, 3, 8, 2, 30), ny)
		if want := at(ny, 2025, 3, 9, 3, 30); !got.Equal(want) {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

func TestDurationFixed(t *testing.T) {
	t.Parallel()

	t.Run("CountsADayAs24Hours", func(t *testing.T) {
		t.Parallel()
		if d, ok := MustParseDuration("1d2h").Fixed(); !ok || d != 26*time.Hour {
			t.Errorf("Fixed() = %v, %v", d, ok)
		}
	})
	t.Run("RefusesMonths", func(t *testing.T) {
		t.Parallel()
		if _, ok := MustParseDuration("1mo").Fixed(); ok {
			t.Error("Fixed() ok for a month")
		}
	})
}
