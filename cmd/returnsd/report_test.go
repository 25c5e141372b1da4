package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ids are the first column of a CSV export, below its header.
func ids(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, r := range readCSV(t, out)[1:] {
		got = append(got, r[0])
	}
	return got
}

func TestExportFilters(t *testing.T) {
	t.Parallel()
	c, b := setupLoaded(t)
	c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))

	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"ByState", []string{"--state", "reversed"}, []string{"5001", "5008"}},
		{"ByStates", []string{"--state", "APPROVED,LOCKED"}, []string{"5003", "5006"}},
		{"ByPartner", []string{"--partner", "304"}, []string{"5007", "5008"}},
		// Event dates are days in acme's zone: 5002 came at 09:00 on Nov 3 in New York.
		{"ByEventDateBothEndsIncluded", []string{"--from", "2026-11-03", "--to", "2026-11-05"}, []string{"5002", "5003", "5004", "5005"}},
		{"FromOnly", []string{"--from", "2026-11-09"}, []string{"5009", "5010"}},
		{"Together", []string{"--partner", "301", "--state", "PENDING", "--to", "2026-11-30"}, []string{"5002"}},
	} {
		t.Run("Actions"+tt.name, func(t *testing.T) {
			out := c.mustRun(append([]string{"export", "actions", "--brand", "acme"}, tt.args...)...)
			if got := ids(t, out); !slices.Equal(got, tt.want) {
				t.Errorf("%q", got)
			}
		})
	}

	t.Run("InquiriesByStatusAndSubmissionDate", func(t *testing.T) {
		c.mustRun("import", "inquiries", "--brand", "acme", b.path("acme_inquiries.csv"))
		all := ids(t, c.mustRun("export", "inquiries", "--brand", "acme"))
		open := ids(t, c.mustRun("export", "inquiries", "--brand", "acme", "--state", "NEW,INCOMPLETE"))
		none := ids(t, c.mustRun("export", "inquiries", "--brand", "acme", "--to", "2000-01-01"))
		if len(all) == 0 || !slices.Equal(open, all) || len(none) != 0 {
			t.Errorf("all %q, open %q, before 2000 %q", all, open, none)
		}
	})

	t.Run("MistakesAreOneLineErrors", func(t *testing.T) {
		checkOneLineError(t, c.run("export", "actions", "--brand", "acme", "--state", "OPEN"), 2,
			`export actions: --state: "OPEN" is not a state: PENDING, APPROVED, LOCKED, PAID, REVERSED`)
		checkOneLineError(t, c.run("export", "actions", "--brand", "acme", "--partner", "x"), 2, `--partner "x" is not a partner id`)
		checkOneLineError(t, c.run("export", "inquiries", "--brand", "acme", "--from", "1.11.2026"), 2,
			`export inquiries: --from: "1.11.2026" is not a date written YYYY-MM-DD`)
		checkOneLineError(t, c.run("export", "actions", "--brand", "acme", "--from", "2026-11-05", "--to", "2026-11-01"), 2,
			"--to 2026-11-01 is before --from 2026-11-05")
		checkOneLineError(t, c.run("export", "inquiries", "--brand", "acme", "--state", "PENDING"), 2, "NEW, INCOMPLETE, VALID, DECLINED")
		checkOneLineError(t, c.run("export", "balances", "--brand", "initech"), 1, "initech")
	})

	t.Run("BalancesOfOneBrand", func(t *testing.T) {
		if got := c.mustRun("export", "balances", "--brand", "globex"); got != "Brand,Currency,Balance,DelayedPayouts,DelayedAmount\nglobex,EUR,0.00,0,0.00\n" {
			t.Errorf("%q", got)
		}
	})
}

func TestReportCommand(t *testing.T) {
	t.Parallel()
	c, b := setupLoaded(t)
	c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))
	// The files came on a day of their own, so no midnight falls in the test.
	const day = "2026-11-20"
	if _, err := b.db.Exec(t.Context(), "UPDATE received_files SET received_at = '2026-11-20 12:00:00Z'"); err != nil {
		t.Fatal(err)
	}

	t.Run("IsYesterdaysInUTCAsHTMLByDefault", func(t *testing.T) {
		out := c.mustRun("report")
		yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
		if !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "Daily report "+yesterday) || !strings.Contains(out, "(UTC)") {
			t.Errorf("report starts:\n%s", out[:min(len(out), 600)])
		}
	})

	t.Run("TheCSVOfADayCountsItsFiles", func(t *testing.T) {
		recs := readCSV(t, c.mustRun("report", "--date", day, "--format", "csv"))
		var received, applied string
		for _, r := range recs[1:] {
			if r[0] != day {
				t.Fatalf("a row of another day: %q", r)
			}
			switch {
			case r[2] == "" && r[3] == "files" && r[4] == "received":
				received = r[7]
			case r[2] == "acme" && r[3] == "rows" && r[4] == "applied":
				applied = r[7]
			}
		}
		// The tracking export and the returns file.
		if received != "2" || applied == "" || applied == "0" {
			t.Errorf("files received %q, acme's rows applied %q", received, applied)
		}
	})

	t.Run("WritesAFileInTheFormatOfItsExtensionInTheZoneAsked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "day.json")
		if out := c.mustRun("report", "--date", day, "--tz", "Europe/Berlin", "--brand", "globex", "-o", path); out != "" {
			t.Errorf("stdout %q", out)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Day      string `json:"day"`
			Timezone string `json:"timezone"`
			Brand    string `json:"brand"`
			Brands   []struct {
				Brand string `json:"brand"`
			} `json:"brands"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if r.Day != day || r.Timezone != "Europe/Berlin" || r.Brand != "globex" || len(r.Brands) != 1 || r.Brands[0].Brand != "globex" {
			t.Errorf("report %+v", r)
		}
	})

	t.Run("TakesItsZoneFromTheConfig", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), "schedules:\n", "report:\n  timezone: Asia/Tokyo\nschedules:\n")
		if out := c.mustRun("report", "--config", cfg, "--format", "json"); !strings.Contains(out, `"timezone": "Asia/Tokyo"`) {
			t.Errorf("report:\n%s", out[:min(len(out), 400)])
		}
	})

	t.Run("MistakesAreOneLineErrors", func(t *testing.T) {
		checkOneLineError(t, c.run("report", "--format", "xml"), 2, `report: --format is html, csv or json, not "xml"`)
		checkOneLineError(t, c.run("report", "--date", "2026-13-01"), 2, `report: --date: "2026-13-01" is not a date written YYYY-MM-DD`)
		checkOneLineError(t, c.run("report", "--tz", "Mars/Olympus"), 2, `report: --tz "Mars/Olympus" is not a known IANA time zone`)
		checkOneLineError(t, c.run("report", "--brand", "initech"), 1, "initech")
		checkOneLineError(t, c.run("report", "2026-11-01"), 2, "report takes no arguments")
	})
}
