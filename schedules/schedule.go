// Package schedules decides when returnsd's periodic work runs: each source's
// poll, the lifecycle, inquiry auto-resolution and the daily report. It knows
// nothing of the work itself, of the config, of SQL or of file formats.
//
// A Schedule is a cron expression in robfig/cron's standard syntax (5 fields
// or a descriptor, optionally prefixed with CRON_TZ=Zone) read on the wall
// clock of one time zone. Its Next method is what River's periodic jobs ask
// (rivertype.PeriodicSchedule), so a Schedule is handed to River as it is.
//
// # Daylight saving time
//
// The wall clock skips an hour in spring and repeats one in autumn, and
// robfig/cron's own SpecSchedule.Next gets both wrong: a job at 02:30 does not
// run at all on the day the clocks go forward, and a job at 01:30 (New York)
// or 02:30 (Europe) runs twice on the day they go back. Next here reads the
// expression on the wall clock and then decides, as Vixie cron does:
//
//   - A schedule that runs every hour (its hour field is *, as in @hourly or
//     */15 * * * *) keeps its rhythm in real time: it runs every real hour (or
//     15 minutes) through both changes, so the repeated hour runs twice and
//     the skipped hour not at all — the wall clock just passes over it.
//   - Any other schedule runs at most once per wall-clock time: a time that
//     happens twice runs at its first occurrence only, and a time the clocks
//     skip runs once, at the moment they jump (03:00 for a 02:30 job in New
//     York or Berlin). A daily job therefore runs exactly once every day.
//
// @every durations are real elapsed time, whatever the zone.
package schedules

import "time"

// Schedule is when a job runs. Parse makes one; the zero Schedule never runs.
// A Schedule is a small value, safe to copy and to use from several goroutines.
type Schedule struct {
	spec     string
	location *time.Location
	rule     rule
}

// rule finds the next run after an instant: wallClock or every.
type rule interface {
	next(after time.Time) time.Time
}

// Next returns the first run strictly after t, in t's location, or the zero
// time when there is none (the zero Schedule). Runs fall on whole seconds.
func (s Schedule) Next(t time.Time) time.Time {
	if s.rule == nil {
		return time.Time{}
	}
	next := s.rule.next(t)
	if next.IsZero() {
		return next
	}
	return next.In(t.Location())
}

// String is the expression as Parse was given it, without surrounding space.
func (s Schedule) String() string { return s.spec }

// Location is the zone whose wall clock the schedule is read on: the CRON_TZ
// of the expression, else the default zone Parse was given. An @every
// schedule does not depend on it.
func (s Schedule) Location() *time.Location {
	if s.location == nil {
		return time.UTC
	}
	return s.location
}

// Job is a schedule with the name the daemon knows it by, e.g. "lifecycle" or
// "poll:acme-sftp". Names are unique within one daemon and stable across
// restarts and replicas, so a job runner (River's periodic jobs) can key
// its bookkeeping by them.
type Job struct {
	Name     string
	Schedule Schedule
}
