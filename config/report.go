package config

import (
	"fmt"
	"net/mail"
	"time"
)

// Report is the daily processing report (SPEC §7) that the daemon builds on
// schedules.report and mails through the smtp section.
type Report struct {
	// Recipients get the report each day: addresses such as
	// ops@platform.example or "Ops <ops@platform.example>", all in one mail.
	// Default: none; the daemon then mails no report, and returnsd report
	// still prints one.
	Recipients []string `yaml:"recipients"`
	// Timezone is the IANA zone whose calendar days reports cover and show
	// their times in: the mailed report is of the day before the run's day
	// there. schedules.report runs on its wall clock too, unless it names a
	// CRON_TZ. Default: UTC.
	Timezone string `yaml:"timezone"`

	location *time.Location // loaded by Validate
}

// DefaultReportTimezone is the Report.Timezone used when none is configured.
const DefaultReportTimezone = "UTC"

// Location is the report's zone. Validate loads it once; on a Report that
// was never validated it is loaded on each call, and UTC is returned if it
// cannot be.
func (r *Report) Location() *time.Location {
	if r.location != nil {
		return r.location
	}
	if loc, err := time.LoadLocation(r.Timezone); err == nil && r.Timezone != "" && r.Timezone != "Local" {
		return loc
	}
	return time.UTC
}

// Mails reports whether the daemon mails the report: it has recipients.
func (r *Report) Mails() bool { return len(r.Recipients) > 0 }

// report checks the report section: a zone that loads, and recipients that
// are addresses, with an smtp section to mail them through.
func (v *validator) report(c *Config) {
	r := &c.Report
	r.location = nil
	switch loc, err := time.LoadLocation(r.Timezone); {
	case r.Timezone == "":
		v.add("report.timezone", "is required (an IANA zone such as Europe/Berlin, or UTC)")
	case err != nil || r.Timezone == "Local":
		v.addf("report.timezone", "%q is not a known IANA time zone", r.Timezone)
	default:
		r.location = loc
	}
	seen := map[string]bool{}
	for i, to := range r.Recipients {
		field := fmt.Sprintf("report.recipients[%d]", i)
		a, err := mail.ParseAddress(to)
		switch {
		case err != nil:
			v.addf(field, "%q is not an email address", to)
		case seen[a.Address]:
			v.addf(field, "%s is listed twice", a.Address)
		}
		if err == nil {
			seen[a.Address] = true
		}
	}
	if len(r.Recipients) > 0 && c.SMTP.IsZero() {
		v.add("report.recipients", "need an smtp section to mail the report through")
	}
}
