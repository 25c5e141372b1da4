package schedules

import (
	"testing"
	"time"
)

func TestPrevious(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, spec string
		t          time.Time
		within     time.Duration
		want       time.Time
		ok         bool
	}{
		{"TheRunAtTIsItsOwnPrevious", "30 2 * * *", at("2026-06-01 02:30:00"), 25 * time.Hour, at("2026-06-01 02:30:00"), true},
		{"ADailyRunAnHourAgo", "30 2 * * *", at("2026-06-01 03:30:00"), 25 * time.Hour, at("2026-06-01 02:30:00"), true},
		{"YesterdaysRunBeforeTodays", "30 2 * * *", at("2026-06-01 01:00:00"), 25 * time.Hour, at("2026-05-31 02:30:00"), true},
		{"NoneWithinTheWindow", "30 2 * * *", at("2026-06-01 01:00:00"), time.Hour, time.Time{}, false},
		{"TheSkippedTimeRanAtTheJump", "30 2 * * *", at("2026-03-08 04:00:00"), 25 * time.Hour, at("2026-03-08 03:00:00"), true},
		{"EveryMinute", "* * * * *", at("2026-06-01 10:15:59"), time.Hour, at("2026-06-01 10:15:00"), true},
		{"AnEverySchedulesRunsHaveNoFixedTimes", "@every 10s", at("2026-06-01 10:15:59"), time.Hour, time.Time{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.spec, ny)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.Previous(c.t, c.within)
			if ok != c.ok || !got.Equal(c.want) {
				t.Fatalf("Previous(%s) = %s, %v; want %s, %v", c.t, got, ok, c.want, c.ok)
			}
			if ok && !s.Next(got.Add(-time.Second)).Equal(got) {
				t.Fatalf("%s is not a run of %q", got, c.spec)
			}
		})
	}
}
