package schedules_test

import (
	"fmt"
	"time"

	"github.com/returnsd/returnsd/schedules"
)

// periodicSchedule is River's rivertype.PeriodicSchedule, written out so this
// package need not import River: a Schedule is handed to river.NewPeriodicJob
// as it is.
type periodicSchedule interface {
	Next(current time.Time) time.Time
}

var _ periodicSchedule = schedules.Schedule{}

// A daily 02:30 poll of a New York brand runs once every day, also on the
// night the clocks skip from 02:00 to 03:00.
func ExampleParse() {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	s, err := schedules.Parse("30 2 * * *", newYork)
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	for range 3 {
		at = s.Next(at)
		fmt.Println(at.In(newYork).Format("Mon 2006-01-02 15:04 MST"))
	}
	// Output:
	// Sun 2026-03-08 03:00 EDT
	// Mon 2026-03-09 02:30 EDT
	// Tue 2026-03-10 02:30 EDT
}

func ExampleParse_error() {
	_, err := schedules.Parse("99 99 * * *", time.UTC)
	fmt.Println(err)
	// Output:
	// "99 99 * * *": minute "99": 99 is not in 0-59; hour "99": 99 is not in 0-23
}
