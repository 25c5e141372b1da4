package schedules

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	berlin := mustLoad(t, "Europe/Berlin")

	for _, tt := range []struct {
		name string
		spec string
		zone string // the schedule's zone; Europe/Berlin is the default given
	}{
		{"FiveFields", "*/5 * * * *", "Europe/Berlin"},
		{"ACronTZPrefix", "CRON_TZ=America/New_York 15 * * * *", "America/New_York"},
		{"ATZPrefix", "TZ=Asia/Kolkata 0 6 * * MON-FRI", "Asia/Kolkata"},
		{"NamesInAnyCase", "0 6 1 jan,Jul mon-FRI", "Europe/Berlin"},
		{"AQuestionMarkForAnyDay", "0 0 ? * *", "Europe/Berlin"},
		{"AStartWithAStep", "5/15 * * * *", "Europe/Berlin"},
		{"ARangeWithAStep", "0 8-18/2 * * 1-5", "Europe/Berlin"},
		{"SundayAsZero", "0 0 * * 0", "Europe/Berlin"},
		{"ADayOnlySomeMonthsHave", "0 0 31 * *", "Europe/Berlin"},
		{"Yearly", "@yearly", "Europe/Berlin"},
		{"Annually", "@annually", "Europe/Berlin"},
		{"Monthly", "@monthly", "Europe/Berlin"},
		{"Weekly", "@weekly", "Europe/Berlin"},
		{"Daily", "@daily", "Europe/Berlin"},
		{"Midnight", "@midnight", "Europe/Berlin"},
		{"Hourly", "@hourly", "Europe/Berlin"},
		{"ADescriptorWithAZone", "CRON_TZ=UTC @hourly", "UTC"},
		{"Every", "@every 10s", "Europe/Berlin"},
		{"EveryWithHoursAndMinutes", "@every 1h30m", "Europe/Berlin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(tt.spec, berlin)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			if got := s.Location().String(); got != tt.zone {
				t.Errorf("Location() = %s, want %s", got, tt.zone)
			}
			if s.String() != tt.spec {
				t.Errorf("String() = %q, want %q", s.String(), tt.spec)
			}
			if next := s.Next(time.Now()); next.IsZero() {
				t.Errorf("Next(now) is the zero time")
			}
		})
	}

	t.Run("TrimsSpaceAroundTheSpec", func(t *testing.T) {
		t.Parallel()
		if s := mustParse(t, "  0 6 * * *\n", berlin); s.String() != "0 6 * * *" {
			t.Errorf("String() = %q", s.String())
		}
	})

	t.Run("ANilDefaultZoneIsUTC", func(t *testing.T) {
		t.Parallel()
		if s := mustParse(t, "0 6 * * *", nil); s.Location() != time.UTC {
			t.Errorf("Location() = %s, want UTC", s.Location())
		}
	})
}

func TestParseRejects(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name string
		spec string
		want string // the whole error message
	}{
		{"AnEmptySpec", " ", "empty schedule; want 5 fields (minute hour day-of-month month day-of-week) or a descriptor such as @hourly"},
		{"SixFields", "0 15 * * * *", `"0 15 * * * *" has 6 fields; want 5 (minute hour day-of-month month day-of-week)`},
		{"FourFields", "15 * * *", `"15 * * *" has 4 fields; want 5 (minute hour day-of-month month day-of-week)`},
		{"EveryFieldOutOfRange", "99 99 * * *", `"99 99 * * *": minute "99": 99 is not in 0-59; hour "99": 99 is not in 0-23`},
		{"HourTwentyFour", "0 24 * * *", `"0 24 * * *": hour "24": 24 is not in 0-23`},
		{"DayOfMonthZero", "0 0 0 * *", `"0 0 0 * *": day-of-month "0": 0 is not in 1-31`},
		{"MonthThirteen", "0 0 * 13 *", `"0 0 * 13 *": month "13": 13 is not in 1-12`},
		{"SundayAsSeven", "0 0 * * 7", `"0 0 * * 7": day-of-week "7": 7 is not in 0-6 (0 is Sunday)`},
		{"AValueInAList", "0,99 * * * *", `"0,99 * * * *": minute "0,99": 99 is not in 0-59`},
		{"AFullMonthName", "0 0 * JANUARY *", `"0 0 * JANUARY *": month "JANUARY": "JANUARY" is not a number or a month name (JAN-DEC)`},
		{"AFullDayName", "0 0 * * SUNDAY", `"0 0 * * SUNDAY": day-of-week "SUNDAY": "SUNDAY" is not a number or a day name (SUN-SAT)`},
		{"AWord", "x * * * *", `"x * * * *": minute "x": "x" is not a number`},
		{"ANegativeNumber", "-5 * * * *", `"-5 * * * *": minute "-5": "-5" is not N, N-M or *, each with an optional /STEP`},
		{"TwoHyphens", "1-2-3 * * * *", `"1-2-3 * * * *": minute "1-2-3": "1-2-3" is not N, N-M or *, each with an optional /STEP`},
		{"TwoSlashes", "*/2/3 * * * *", `"*/2/3 * * * *": minute "*/2/3": "*/2/3" is not N, N-M or *, each with an optional /STEP`},
		{"ABackwardRange", "0 5-1 * * *", `"0 5-1 * * *": hour "5-1": the range 5-1 runs backwards`},
		{"AZeroStep", "*/0 * * * *", `"*/0 * * * *": minute "*/0": the step "0" is not a whole number above 0`},
		{"AWordStep", "*/x * * * *", `"*/x * * * *": minute "*/x": the step "x" is not a whole number above 0`},
		{"ADayNoMonthHas", "0 0 30 2 *", `"0 0 30 2 *" never runs: no month it names has that day`},
		{"AnUnknownZone", "CRON_TZ=Mars/Olympus 15 * * * *", `"CRON_TZ=Mars/Olympus 15 * * * *": "Mars/Olympus" is not a known IANA time zone`},
		{"AnEmptyZone", "CRON_TZ= 15 * * * *", `"CRON_TZ= 15 * * * *": CRON_TZ= names no time zone`},
		{"TheMachinesZone", "TZ=Local 15 * * * *", `"TZ=Local 15 * * * *": "Local" is whatever zone the machine has; name an IANA time zone such as Europe/Berlin`},
		{"AZoneAlone", "CRON_TZ=UTC", `"CRON_TZ=UTC": nothing follows the time zone; want 5 fields or a descriptor such as @hourly`},
		{"AnUnknownDescriptor", "@fortnightly", `"@fortnightly" is not a cron descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 10m)`},
		{"ADescriptorWithMore", "@daily 6", `"@daily 6" is not a cron descriptor (@hourly, @daily, @weekly, @monthly, @yearly, @every 10m)`},
		{"EveryWithoutADuration", "@every", `"@every": @every needs a duration such as 10m or 1h30m`},
		{"EveryWithoutAUnit", "@every 10", `"@every 10": "10" is not a duration such as 10m or 1h30m (units h, m, s)`},
		{"EveryInDays", "@every 1d", `"@every 1d": "1d" is not a duration such as 10m or 1h30m (units h, m, s)`},
		{"EveryZero", "@every 0s", `"@every 0s": @every needs at least 1s`},
		{"EveryNegative", "@every -5m", `"@every -5m": @every needs at least 1s`},
		{"EveryFractionOfASecond", "@every 1500ms", `"@every 1500ms": @every needs whole seconds`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.spec, time.UTC)
			if err == nil {
				t.Fatalf("Parse(%q): no error, want %s", tt.spec, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q):\n got %s\nwant %s", tt.spec, err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"*/5 * * * *", "CRON_TZ=America/New_York 15 * * * *", "TZ=Europe/Berlin 0 6 * * MON-FRI",
		"@hourly", "@every 1h30m", "CRON_TZ=UTC", "99 99 * * *", "0 0 30 2 *", "5/15 1-3,7 ? jan-mar sun",
		"*/2/3 * * * *", "-5 * * * *", "0 0 * * 7", "@every", "TZ=", "CRON_TZ=UTC\t@daily",
	} {
		f.Add(seed)
	}
	newYork := mustLoad(f, "America/New_York")
	from := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC) // 01:30 EDT, the first of two in New York
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec, newYork)
		if err != nil {
			if s != (Schedule{}) {
				t.Errorf("Parse(%q) failed with %v but returned %v", spec, err, s)
			}
			return
		}
		if s.String() != strings.TrimSpace(spec) {
			t.Errorf("String() = %q, want the trimmed spec", s.String())
		}
		if next := s.Next(from); !next.After(from) {
			t.Errorf("Parse(%q).Next(%s) = %s, not after it", spec, from, next)
		}
	})
}
