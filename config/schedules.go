package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/returnsd/returnsd/schedules"
)

// Names of the daemon's jobs in Jobs. The first three are the YAML keys of
// their schedules.
const (
	JobLifecycle   = "lifecycle"
	JobAutoResolve = "auto_resolve"
	JobReport      = "report"
	JobPollPrefix  = "poll:" // followed by the source's name
)

// Jobs are the daemon's schedules by name: the lifecycle, inquiry
// auto-resolution and the report, then each source's poll (JobPollPrefix and
// its name), in config order. Validate parses them the same way, so on a
// validated Config it returns no error.
func (c *Config) Jobs() ([]schedules.Job, error) {
	var jobs []schedules.Job
	for _, d := range c.Schedules.named() {
		s, err := schedules.Parse(d.spec, c.scheduleZone(d.job))
		if err != nil {
			return nil, fmt.Errorf("schedules.%s: %w", d.job, err)
		}
		jobs = append(jobs, schedules.Job{Name: d.job, Schedule: s})
	}
	for i := range c.Sources {
		s, err := c.SourceSchedule(&c.Sources[i])
		if err != nil {
			return nil, fmt.Errorf("sources[%d].schedule: %w", i, err)
		}
		jobs = append(jobs, schedules.Job{Name: JobPollPrefix + c.Sources[i].Name, Schedule: s})
	}
	return jobs, nil
}

// SourceSchedule is when s is polled: its Schedule read on the wall clock of
// its brand's timezone unless it names a CRON_TZ. An imap source serves
// several brands, so it runs in UTC.
func (c *Config) SourceSchedule(s *Source) (schedules.Schedule, error) {
	return schedules.Parse(s.Schedule, c.sourceZone(s))
}

// sourceZone is the zone a source's schedule runs in without CRON_TZ; UTC
// also when its brand is unknown, which Validate reports on its own.
func (c *Config) sourceZone(s *Source) *time.Location {
	if s.Type == IMAP {
		return time.UTC
	}
	b, err := c.Brand(s.Brand)
	if err != nil {
		return time.UTC
	}
	return b.Location()
}

// scheduleZone is the zone one of the daemon's own schedules runs in without
// CRON_TZ: the report's zone for the report, whose "0 7 * * *" means 07:00
// where its days are; UTC for the others.
func (c *Config) scheduleZone(job string) *time.Location {
	if job == JobReport {
		return c.Report.Location()
	}
	return time.UTC
}

// namedSchedule is one of the daemon's schedules with its job name.
type namedSchedule struct{ job, spec string }

func (s *Schedules) named() []namedSchedule {
	return []namedSchedule{
		{JobLifecycle, s.Lifecycle},
		{JobAutoResolve, s.AutoResolve},
		{JobReport, s.Report},
	}
}

// schedule checks one cron expression with the parser the daemon uses.
func (v *validator) schedule(field, spec string, zone *time.Location) {
	if strings.TrimSpace(spec) == "" {
		v.add(field, "is required")
		return
	}
	if _, err := schedules.Parse(spec, zone); err != nil {
		v.add(field, err.Error())
	}
}
