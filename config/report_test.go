package config

import (
	"strings"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	t.Parallel()

	t.Run("ByDefaultMailsNoneAndCountsDaysInUTC", func(t *testing.T) {
		t.Parallel()
		c := validConfig(t)
		if c.Report.Mails() || c.Report.Timezone != "UTC" || c.Report.Location() != time.UTC {
			t.Errorf("report = %+v", c.Report)
		}
	})

	t.Run("LoadsRecipientsAndAZoneWhoseWallClockTheScheduleRunsOn", func(t *testing.T) {
		t.Parallel()
		y := minimal + `
smtp:
  address: smtp.platform.example:465
  from: returns@platform.example
report:
  recipients: [ops@platform.example, "Finance <finance@platform.example>"]
  timezone: Europe/Berlin
`
		c, err := Load(strings.NewReader(y), env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Report.Mails() || len(c.Report.Recipients) != 2 || c.Report.Location().String() != "Europe/Berlin" {
			t.Errorf("report = %+v", c.Report)
		}
		jobs, err := c.Jobs()
		if err != nil {
			t.Fatal(err)
		}
		report := jobs[2]
		if report.Name != JobReport || report.Schedule.Location().String() != "Europe/Berlin" {
			t.Fatalf("%s runs in %s", report.Name, report.Schedule.Location())
		}
		// 07:00 in Berlin, an hour before 07:00 UTC in winter; the other jobs stay in UTC.
		at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		if got := report.Schedule.Next(at); !got.Equal(time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)) {
			t.Errorf("the report runs next at %s, want 06:00 UTC", got)
		}
		if jobs[0].Schedule.Location() != time.UTC {
			t.Errorf("the lifecycle runs in %s", jobs[0].Schedule.Location())
		}
	})

	t.Run("ACronTZInTheScheduleWinsOverTheReportsZone", func(t *testing.T) {
		t.Parallel()
		c := validConfig(t)
		c.Report.Timezone = "Europe/Berlin"
		c.Schedules.Report = "CRON_TZ=America/New_York 0 7 * * *"
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		jobs, _ := c.Jobs()
		if got := jobs[2].Schedule.Location().String(); got != "America/New_York" {
			t.Errorf("runs in %s", got)
		}
	})

	for _, tt := range []struct {
		name   string
		breaks func(c *Config)
		want   string
	}{
		{"AnUnknownZone", func(c *Config) { c.Report.Timezone = "Mars/Olympus" }, `report.timezone: "Mars/Olympus" is not a known IANA time zone`},
		{"TheMachinesOwnZone", func(c *Config) { c.Report.Timezone = "Local" }, `report.timezone: "Local" is not a known IANA time zone`},
		{"ARecipientThatIsNoAddress", func(c *Config) { c.Report.Recipients = []string{"ops"} }, `report.recipients[0]: "ops" is not an email address`},
		{"ARecipientTwice", func(c *Config) {
			c.Report.Recipients = []string{"ops@platform.example", "Ops <ops@platform.example>"}
		}, "report.recipients[1]: ops@platform.example is listed twice"},
		{"RecipientsWithoutSMTP", func(c *Config) {
			c.Report.Recipients = []string{"ops@platform.example"}
			c.SMTP = SMTP{}
			c.Sources = c.Sources[:3] // no imap source, which needs smtp too
		}, "report.recipients: need an smtp section to mail the report through"},
	} {
		t.Run("Refuses"+tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig(t)
			tt.breaks(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
