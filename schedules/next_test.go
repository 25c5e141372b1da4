package schedules

import (
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// dstZone is a zone with its two clock changes of 2026. In all three the
// clocks skip 02:00–02:59 on the day they go forward.
type dstZone struct {
	name     string
	forward  string // the local date the clocks jump from 02:00 to 03:00
	back     string // the local date one hour of the wall clock happens twice
	repeated int    // that hour: 01 in New York (02:00 EDT → 01:00 EST), 02 in Europe and Sydney
}

var dstZones = []dstZone{
	{"America/New_York", "2026-03-08", "2026-11-01", 1},
	{"Europe/Berlin", "2026-03-29", "2026-10-25", 2},
	{"Australia/Sydney", "2026-10-04", "2026-04-05", 2}, // southern hemisphere: forward in October
}

func TestNextAcrossDST(t *testing.T) {
	t.Parallel()

	for _, z := range dstZones {
		t.Run(zoneTestName(z.name), func(t *testing.T) {
			t.Parallel()
			loc := mustLoad(t, z.name)
			year := [2]time.Time{localDay(t, loc, "2026-01-01"), localDay(t, loc, "2027-01-01")}

			t.Run("TheSkippedTimeRunsOnceWhenTheClocksJump", func(t *testing.T) {
				t.Parallel()
				at := runsBetween(t, mustParse(t, "30 2 * * *", loc), year[0], year[1])
				checkOncePerDay(t, at, loc, year)
				run := onDay(t, at, loc, z.forward)
				if got := run.In(loc).Format("15:04"); got != "03:00" {
					t.Errorf("on %s it runs at %s, want 03:00, the moment the clocks jump past 02:30", z.forward, got)
				}
			})

			t.Run("TheRepeatedTimeRunsOnceAtItsFirstOccurrence", func(t *testing.T) {
				t.Parallel()
				spec := fmt.Sprintf("30 %d * * *", z.repeated)
				at := runsBetween(t, mustParse(t, spec, loc), year[0], year[1])
				checkOncePerDay(t, at, loc, year)
				run := onDay(t, at, loc, z.back)
				want := fmt.Sprintf("%02d:30", z.repeated)
				if got, again := run.In(loc).Format("15:04"), run.Add(time.Hour).In(loc).Format("15:04"); got != want || again != want {
					t.Errorf("on %s it runs at %s, and an hour later the clock reads %s; want the first of the two %s", z.back, run.In(loc), again, want)
				}
			})

			for _, spec := range []string{"0 0 * * *", "@daily", "59 23 * * *", "0 3 * * *", "30 1 * * *", "30 2 * * *"} {
				t.Run("DailyRunsOnceEveryDay/"+spec, func(t *testing.T) {
					t.Parallel()
					at := runsBetween(t, mustParse(t, spec, loc), year[0], year[1])
					checkOncePerDay(t, at, loc, year)
				})
			}

			for _, spec := range []string{"0 * * * *", "@hourly", "30 * * * *", "59 * * * *"} {
				t.Run("HourlyRunsEveryRealHour/"+spec, func(t *testing.T) {
					t.Parallel()
					at := runsBetween(t, mustParse(t, spec, loc), year[0], year[1])
					checkEvery(t, at, time.Hour)
					checkRunsOn(t, at, loc, map[string]int{z.forward: 23, z.back: 25, "2026-07-15": 24, "2026-12-31": 24})
				})
			}

			t.Run("Every15MinutesRunsEveryReal15Minutes", func(t *testing.T) {
				t.Parallel()
				for day, runs := range map[string]int{z.forward: 92, z.back: 100} {
					from := localDay(t, loc, day).AddDate(0, 0, -1)
					at := runsBetween(t, mustParse(t, "*/15 * * * *", loc), from, from.AddDate(0, 0, 3))
					checkEvery(t, at, 15*time.Minute)
					checkRunsOn(t, at, loc, map[string]int{from.Format(time.DateOnly): 96, day: runs})
				}
			})

			t.Run("WeekdaysRunOnWeekdaysOnly", func(t *testing.T) {
				t.Parallel()
				at := runsBetween(t, mustParse(t, "30 2 * * MON-FRI", loc), year[0], year[1])
				perDay := runsPerLocalDay(at, loc)
				for d := year[0]; d.Before(year[1]); d = d.AddDate(0, 0, 1) {
					want := 1
					if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
						want = 0
					}
					if got := perDay[d.Format(time.DateOnly)]; got != want {
						t.Errorf("%s (%s): %d runs, want %d", d.Format(time.DateOnly), d.Weekday(), got, want)
					}
				}
			})

			t.Run("SundaysAtTheSkippedAndRepeatedTimesRunOnceEach", func(t *testing.T) {
				t.Parallel()
				// Every change of 2026 in these zones is on a Sunday.
				for _, spec := range []string{"30 2 * * SUN", fmt.Sprintf("30 %d * * 0", z.repeated)} {
					at := runsBetween(t, mustParse(t, spec, loc), year[0], year[1])
					perDay := runsPerLocalDay(at, loc)
					if len(at) != 52 || perDay[z.forward] != 1 || perDay[z.back] != 1 {
						t.Errorf("%s: %d runs in 2026, %d on %s, %d on %s; want 52, one on each change day",
							spec, len(at), perDay[z.forward], z.forward, perDay[z.back], z.back)
					}
				}
			})

			t.Run("EveryIsARealDuration", func(t *testing.T) {
				t.Parallel()
				for _, day := range []string{z.forward, z.back} {
					from := localDay(t, loc, day)
					at := runsBetween(t, mustParse(t, "@every 90m", loc), from, from.AddDate(0, 0, 1))
					checkEvery(t, at, 90*time.Minute)
				}
			})

			t.Run("NextFromAnyInstantIsTheFirstRunAfterIt", func(t *testing.T) {
				t.Parallel()
				// Whatever instant the daemon asks from (a restart, a new leader),
				// it gets the run the iterated sequence has next: no skip, no repeat.
				for _, spec := range []string{"*/15 * * * *", "30 * * * *", "30 1 * * *", "30 2 * * *", "0 1-3 * * *"} {
					s := mustParse(t, spec, loc)
					for _, day := range []string{z.forward, z.back} {
						from := localDay(t, loc, day).Add(-2 * time.Hour)
						to := from.Add(30 * time.Hour)
						seq := runsBetween(t, s, from, to.Add(26*time.Hour))
						for at := from; at.Before(to); at = at.Add(7*time.Minute + 13*time.Second) {
							got, want := s.Next(at), firstAfter(seq, at)
							if !got.Equal(want) {
								t.Errorf("%s: Next(%s) = %s, want %s", spec, at.In(loc), got.In(loc), want.In(loc))
							}
						}
					}
				}
			})
		})
	}

	t.Run("AZoneWithoutDSTRunsEveryDayAndHour", func(t *testing.T) {
		t.Parallel()
		loc := mustLoad(t, "Asia/Kolkata")
		year := [2]time.Time{localDay(t, loc, "2026-01-01"), localDay(t, loc, "2027-01-01")}
		checkOncePerDay(t, runsBetween(t, mustParse(t, "30 2 * * *", loc), year[0], year[1]), loc, year)
		hourly := runsBetween(t, mustParse(t, "@hourly", loc), year[0], year[1])
		checkEvery(t, hourly, time.Hour)
		if len(hourly) != 365*24 {
			t.Errorf("%d hourly runs in 2026, want %d", len(hourly), 365*24)
		}
	})
}

func TestNext(t *testing.T) {
	t.Parallel()

	t.Run("RunsInTheDefaultZoneWithoutAPrefix", func(t *testing.T) {
		t.Parallel()
		berlin := mustLoad(t, "Europe/Berlin")
		s := mustParse(t, "0 6 * * *", berlin)
		got := s.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
		if want := time.Date(2026, 7, 1, 6, 0, 0, 0, berlin); !got.Equal(want) {
			t.Errorf("Next = %s, want %s", got, want)
		}
	})

	t.Run("ACronTZPrefixWinsOverTheDefaultZone", func(t *testing.T) {
		t.Parallel()
		s := mustParse(t, "CRON_TZ=America/New_York 0 6 * * *", mustLoad(t, "Europe/Berlin"))
		got := s.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
		if want := time.Date(2026, 7, 1, 6, 0, 0, 0, mustLoad(t, "America/New_York")); !got.Equal(want) {
			t.Errorf("Next = %s, want %s", got, want)
		}
	})

	t.Run("ReturnsTheTimeInTheLocationItWasGiven", func(t *testing.T) {
		t.Parallel()
		s := mustParse(t, "CRON_TZ=Europe/Berlin 0 6 * * *", time.UTC)
		if got := s.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)); got.Location() != time.UTC {
			t.Errorf("Next = %s, want it in UTC like its argument", got)
		}
	})

	t.Run("IsStrictlyAfterItsArgument", func(t *testing.T) {
		t.Parallel()
		s := mustParse(t, "0 6 * * *", time.UTC)
		at := time.Date(2026, 7, 1, 6, 0, 0, 0, time.UTC)
		if got := s.Next(at); !got.Equal(at.AddDate(0, 0, 1)) {
			t.Errorf("Next(%s) = %s, want the next day", at, got)
		}
		if got := s.Next(at.Add(-time.Nanosecond)); !got.Equal(at) {
			t.Errorf("Next(%s) = %s, want %s", at.Add(-time.Nanosecond), got, at)
		}
	})

	t.Run("EveryRunsOnWholeSeconds", func(t *testing.T) {
		t.Parallel()
		s := mustParse(t, "@every 10s", time.UTC)
		at := time.Date(2026, 7, 1, 0, 0, 0, 400_000_000, time.UTC)
		if got, want := s.Next(at), time.Date(2026, 7, 1, 0, 0, 10, 0, time.UTC); !got.Equal(want) {
			t.Errorf("Next(%s) = %s, want %s", at, got, want)
		}
	})

	t.Run("ALeapDayRunsEveryFourYears", func(t *testing.T) {
		t.Parallel()
		s := mustParse(t, "0 0 29 2 *", time.UTC)
		if got, want := s.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)), time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
			t.Errorf("Next = %s, want %s", got, want)
		}
	})

	t.Run("TheZeroScheduleNeverRuns", func(t *testing.T) {
		t.Parallel()
		if got := (Schedule{}).Next(time.Now()); !got.IsZero() {
			t.Errorf("Next = %s, want the zero time", got)
		}
	})
}

// runsBetween iterates s.Next, as the daemon's scheduler does, and returns the
// runs from from (included) to to (excluded).
func runsBetween(t *testing.T, s Schedule, from, to time.Time) []time.Time {
	t.Helper()
	var at []time.Time
	from = from.Add(-time.Nanosecond)
	for next := s.Next(from); next.Before(to); next = s.Next(next) {
		if next.IsZero() || !next.After(from) {
			t.Fatalf("%s: Next(%s) = %s, not after it", s, from, next)
		}
		at = append(at, next)
		from = next
	}
	return at
}

// checkOncePerDay fails unless there is exactly one run on every local day of span.
func checkOncePerDay(t *testing.T, at []time.Time, loc *time.Location, span [2]time.Time) {
	t.Helper()
	perDay := runsPerLocalDay(at, loc)
	days := 0
	for d := span[0]; d.Before(span[1]); d = d.AddDate(0, 0, 1) {
		days++
		if n := perDay[d.Format(time.DateOnly)]; n != 1 {
			t.Errorf("%s: %d runs, want 1", d.Format(time.DateOnly), n)
		}
	}
	if len(at) != days {
		t.Errorf("%d runs in %d days", len(at), days)
	}
}

// checkEvery fails unless consecutive runs are exactly d apart in real time.
func checkEvery(t *testing.T, at []time.Time, d time.Duration) {
	t.Helper()
	if len(at) < 2 {
		t.Fatalf("%d runs; want several", len(at))
	}
	for i := 1; i < len(at); i++ {
		if got := at[i].Sub(at[i-1]); got != d {
			t.Errorf("from %s to %s is %s, want %s", at[i-1], at[i], got, d)
		}
	}
}

// checkRunsOn fails unless each local day has the given number of runs.
func checkRunsOn(t *testing.T, at []time.Time, loc *time.Location, want map[string]int) {
	t.Helper()
	perDay := runsPerLocalDay(at, loc)
	for day, n := range want {
		if perDay[day] != n {
			t.Errorf("%s: %d runs, want %d", day, perDay[day], n)
		}
	}
}

func runsPerLocalDay(at []time.Time, loc *time.Location) map[string]int {
	n := map[string]int{}
	for _, a := range at {
		n[a.In(loc).Format(time.DateOnly)]++
	}
	return n
}

// onDay is the one run on a local day.
func onDay(t *testing.T, at []time.Time, loc *time.Location, day string) time.Time {
	t.Helper()
	for _, a := range at {
		if a.In(loc).Format(time.DateOnly) == day {
			return a
		}
	}
	t.Fatalf("no run on %s", day)
	return time.Time{}
}

func firstAfter(seq []time.Time, t time.Time) time.Time {
	for _, s := range seq {
		if s.After(t) {
			return s
		}
	}
	return time.Time{}
}

// localDay is local midnight of a date (which exists in every zone tested).
func localDay(t *testing.T, loc *time.Location, date string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("no tzdata: %v", err)
	}
	return loc
}

func mustParse(t testing.TB, spec string, zone *time.Location) Schedule {
	t.Helper()
	s, err := Parse(spec, zone)
	if err != nil {
		t.Fatalf("Parse(%q): %v", spec, err)
	}
	return s
}

// zoneTestName makes "America/New_York" a subtest name without a slash: "NewYork".
func zoneTestName(zone string) string {
	return strings.ReplaceAll(path.Base(zone), "_", "")
}

// TestRobfigSpecScheduleMisreadsDST records why wallClock exists: robfig's
// own SpecSchedule.Next, read in a zone with DST, skips a 02:30 job on the
// day the clocks go forward and runs a 01:30 job twice on the day they go
// back (New York, 2026). If this test fails, robfig changed; see whether
// wallClock is still needed.
func TestRobfigSpecScheduleMisreadsDST(t *testing.T) {
	t.Parallel()
	newYork := mustLoad(t, "America/New_York")
	robfig := func(spec string) Schedule {
		r := mustParse(t, spec, newYork).rule.(wallClock)
		times := *r.times
		times.Location = newYork
		return Schedule{spec: spec, location: newYork, rule: robfigRule{&times}}
	}
	at := runsBetween(t, robfig("30 2 * * *"), localDay(t, newYork, "2026-03-07"), localDay(t, newYork, "2026-03-10"))
	if perDay := runsPerLocalDay(at, newYork); perDay["2026-03-08"] != 0 {
		t.Errorf("robfig runs 30 2 * * * %d times on 2026-03-08; it used to skip it", perDay["2026-03-08"])
	}
	at = runsBetween(t, robfig("30 1 * * *"), localDay(t, newYork, "2026-10-31"), localDay(t, newYork, "2026-11-03"))
	if perDay := runsPerLocalDay(at, newYork); perDay["2026-11-01"] != 2 {
		t.Errorf("robfig runs 30 1 * * * %d times on 2026-11-01; it used to run it twice", perDay["2026-11-01"])
	}
}

type robfigRule struct{ times *cron.SpecSchedule }

func (r robfigRule) next(t time.Time) time.Time { return r.times.Next(t) }
