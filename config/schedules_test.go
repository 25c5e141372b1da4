package config

import (
	"strings"
	"testing"
	"time"
)

func TestJobs(t *testing.T) {
	t.Parallel()

	t.Run("NamesTheDaemonsJobsThenEachSourcesPoll", func(t *testing.T) {
		t.Parallel()
		jobs, err := validConfig(t).Jobs()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, j := range jobs {
			names = append(names, j.Name)
		}
		want := "lifecycle auto_resolve report auto_approve notify poll:drop poll:acme-sftp poll:globex-ftp poll:inbox"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("jobs = %s, want %s", got, want)
		}
	})

	t.Run("DaemonSchedulesRunInUTCByDefault", func(t *testing.T) {
		t.Parallel()
		jobs, err := validConfig(t).Jobs()
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
		for _, j := range jobs[:3] {
			if j.Schedule.Location() != time.UTC {
				t.Errorf("%s runs in %s, want UTC", j.Name, j.Schedule.Location())
			}
		}
		if got := jobs[2].Schedule.Next(at); !got.Equal(time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC)) {
			t.Errorf("the report runs next at %s, want 07:00 UTC", got)
		}
	})

	t.Run("ReportsAScheduleThatDoesNotParse", func(t *testing.T) {
		t.Parallel()
		c := validConfig(t)
		c.Sources[2].Schedule = "@sometimes"
		if _, err := c.Jobs(); err == nil || !strings.HasPrefix(err.Error(), `sources[2].schedule: "@sometimes" is not a cron descriptor`) {
			t.Errorf("Jobs error = %v", err)
		}
	})
}

func TestSourceSchedule(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		name     string
		source   int
		schedule string
		zone     string
	}{
		{"RunsInItsBrandsTimezone", 0, "0 6 * * *", "America/New_York"},
		{"RunsInAnotherBrandsTimezone", 2, "0 6 * * *", "Europe/Berlin"},
		{"RunsInTheZoneItNames", 0, "CRON_TZ=Asia/Kolkata 0 6 * * *", "Asia/Kolkata"},
		{"RunsInUTCForAnIMAPSourceOfManyBrands", 3, "0 6 * * *", "UTC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			s := &c.Sources[tt.source]
			s.Schedule = tt.schedule
			sched, err := c.SourceSchedule(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := sched.Location().String(); got != tt.zone {
				t.Errorf("%s runs in %s, want %s", s.Name, got, tt.zone)
			}
		})
	}
}
