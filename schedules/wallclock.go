package schedules

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// wallClock runs at the wall-clock times a cron expression names, in one
// zone, with the DST rules of the package comment.
type wallClock struct {
	// times matches wall-clock times written as UTC times: UTC has no DST,
	// so robfig's SpecSchedule.Next finds the next matching wall-clock time
	// without the mistakes it makes in zones that have it.
	times *cron.SpecSchedule
	zone  *time.Location
	// everyHour is set when the hour field is * (or 0-23): such a schedule
	// keeps its rhythm in real time across DST changes.
	everyHour bool
}

const allHours = 1<<24 - 1

// neverRunsCheckFrom is where newWallClock looks for a first run: robfig
// looks five years ahead, and 2000-2004 holds two February 29ths.
var neverRunsCheckFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func newWallClock(spec string, times *cron.SpecSchedule, zone *time.Location) (wallClock, error) {
	times.Location = time.UTC
	if times.Next(neverRunsCheckFrom).IsZero() {
		return wallClock{}, fmt.Errorf("%q never runs: no month it names has that day", spec)
	}
	return wallClock{times: times, zone: zone, everyHour: times.Hour&allHours == allHours}, nil
}

// maxShift bounds how far any zone's clocks jump at once (two hours, in
// Antarctica/Troll); the zone changes offset at most once within it.
const maxShift = 3 * time.Hour

// next scans the matching wall-clock times from t's own and keeps the
// earliest instant after t among those they stand for. When the clocks go
// back soon after t, a wall-clock time earlier than t's happens again after
// t, so the scan starts that much earlier and goes on that much further.
func (w wallClock) next(t time.Time) time.Time {
	_, offsetNow := t.In(w.zone).Zone()
	_, offsetSoon := t.Add(maxShift).In(w.zone).Zone()
	back := time.Duration(max(0, offsetNow-offsetSoon)) * time.Second

	var best, bestWall time.Time
	for wall := w.times.Next(wallClockOf(t, w.zone).Add(-back)); !wall.IsZero(); wall = w.times.Next(wall) {
		if !best.IsZero() && wall.After(bestWall.Add(back)) {
			break
		}
		for _, at := range w.instants(wall) {
			if at.After(t) && (best.IsZero() || at.Before(best)) {
				best, bestWall = at, wallClockOf(at, w.zone)
			}
		}
	}
	return best
}

// instants are the moments the schedule runs for one wall-clock time: the
// one moment the clock shows it; in the hour the clocks go back, the first of
// the two (both for an every-hour schedule); in the hour they skip, the
// moment of the jump (none for an every-hour schedule, whose runs after the
// jump keep its rhythm).
func (w wallClock) instants(wall time.Time) []time.Time {
	// A day either side of the wall-clock time the zone is surely on its
	// offsets from before and after any change at that time.
	_, offsetBefore := wall.Add(-24 * time.Hour).In(w.zone).Zone()
	_, offsetAfter := wall.Add(24 * time.Hour).In(w.zone).Zone()
	first := wall.Add(-time.Duration(offsetBefore) * time.Second)
	second := wall.Add(-time.Duration(offsetAfter) * time.Second)
	firstShows := wallClockOf(first, w.zone).Equal(wall)
	secondShows := offsetAfter != offsetBefore && wallClockOf(second, w.zone).Equal(wall)

	switch {
	case firstShows && secondShows: // the clocks went back: first is the earlier
		if w.everyHour {
			return []time.Time{first, second}
		}
		return []time.Time{first}
	case firstShows:
		return []time.Time{first}
	case secondShows:
		return []time.Time{second}
	case w.everyHour:
		return nil
	}
	// Skipped: first, read with the old offset, lies after the jump, so the
	// zone in effect then began at the jump.
	jump, _ := first.In(w.zone).ZoneBounds()
	if jump.IsZero() {
		return []time.Time{first}
	}
	return []time.Time{jump}
}

// wallClockOf is what the clock on the wall in zone shows at t, written as a
// UTC time.
func wallClockOf(t time.Time, zone *time.Location) time.Time {
	l := t.In(zone)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// every runs at a fixed interval of real time, on whole seconds.
type every struct{ interval time.Duration }

func (e every) next(t time.Time) time.Time {
	return t.Truncate(time.Second).Add(e.interval)
}
