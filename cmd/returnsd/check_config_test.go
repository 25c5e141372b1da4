package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	t.Parallel()

	// check-config needs no database: its cli has none.
	setup := func(t *testing.T) *cli {
		return &cli{t: t, env: map[string]string{"USER": "tester"}}
	}

	t.Run("SaysTheEmbeddedConfigIsOKAndWhenEachJobRunsNext", func(t *testing.T) {
		t.Parallel()
		out := setup(t).mustRun("check-config", "--at", "2026-03-08T06:30:00Z")
		want := []string{
			"config OK: 2 brands, 0 sources",
			"next runs after 2026-03-08T06:30:00Z:",
			"JOB           SCHEDULE    ZONE  NEXT RUN",
			"lifecycle     5 * * * *   UTC   2026-03-08 07:05 +00:00 UTC",
			"auto_resolve  35 * * * *  UTC   2026-03-08 06:35 +00:00 UTC",
			"report        0 7 * * *   UTC   2026-03-08 07:00 +00:00 UTC",
			"auto_approve  20 * * * *  UTC   2026-03-08 07:20 +00:00 UTC",
			"notify        * * * * *   UTC   2026-03-08 06:31 +00:00 UTC",
		}
		checkLines(t, out, want)
	})

	t.Run("ASourceRunsNextInItsBrandsTimezoneAcrossTheClockChange", func(t *testing.T) {
		t.Parallel()
		// 05:00Z on 2026-03-08 is midnight in New York, the night the clocks
		// skip 02:00-03:00: acme's 02:30 poll runs at 03:00 EDT.
		cfg := writeConfig(t, t.TempDir(), "log:\n", `sources:
  - {name: acme-drop, brand: acme, type: localdir, path: /srv/acme, schedule: "30 2 * * *"}
  - {name: globex-drop, brand: globex, type: localdir, path: /srv/globex}
  - {name: tokyo, brand: acme, type: localdir, path: /srv/tokyo, schedule: "CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI"}
log:
`)
		out := setup(t).mustRun("check-config", "--config", cfg, "--at", "2026-03-08T05:00:00Z")
		want := []string{
			"config OK: 2 brands, 3 sources",
			"next runs after 2026-03-08T05:00:00Z:",
			"JOB               SCHEDULE                            ZONE              NEXT RUN",
			"lifecycle         5 * * * *                           UTC               2026-03-08 05:05 +00:00 UTC",
			"auto_resolve      35 * * * *                          UTC               2026-03-08 05:35 +00:00 UTC",
			"report            0 7 * * *                           UTC               2026-03-08 07:00 +00:00 UTC",
			"auto_approve      20 * * * *                          UTC               2026-03-08 05:20 +00:00 UTC",
			"notify            * * * * *                           UTC               2026-03-08 05:01 +00:00 UTC",
			"poll:acme-drop    30 2 * * *                          America/New_York  2026-03-08 03:00 -04:00 EDT",
			"poll:globex-drop  */5 * * * *                         Europe/Berlin     2026-03-08 06:05 +01:00 CET",
			"poll:tokyo        CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI  Asia/Tokyo        2026-03-09 09:00 +09:00 JST",
		}
		checkLines(t, out, want)
	})

	t.Run("NamesEveryFaultyFieldOnALineOfItsOwn", func(t *testing.T) {
		t.Parallel()
		cfg := writeConfig(t, t.TempDir(),
			"timezone: Europe/Berlin", "timezone: Mars/Olympus",
			"log:\n", `sources:
  - {name: drop, brand: acme, type: localdir, path: /srv/acme, schedule: "99 99 * * *"}
  - {name: other, brand: acme, type: localdir, path: /srv/other, schedule: "CRON_TZ=Atlantis/Lost 0 6 * * *"}
log:
`)
		o := setup(t).run("check-config", "--config", cfg)
		want := []string{
			cfg + `: brands[1].timezone: "Mars/Olympus" is not a known IANA time zone`,
			cfg + `: sources[0].schedule: "99 99 * * *": minute "99": 99 is not in 0-59; hour "99": 99 is not in 0-23`,
			cfg + `: sources[1].schedule: "CRON_TZ=Atlantis/Lost 0 6 * * *": "Atlantis/Lost" is not a known IANA time zone`,
			"returnsd: config is not valid: 3 problems",
		}
		if o.code != 1 || o.stdout != "" {
			t.Errorf("exit %d, stdout %q; want exit 1 and nothing on stdout", o.code, o.stdout)
		}
		checkLines(t, o.stderr, want)
	})

	t.Run("NamesTheFieldOfAnUnsetSecret", func(t *testing.T) {
		t.Parallel()
		cfg := writeConfig(t, t.TempDir(), "log:\n", `sources:
  - name: globex-ftp
    brand: globex
    type: ftp
    address: ftp.globex.example:21
    username: returnsd
    password: ${GLOBEX_FTP_PASSWORD}
    path: /returns
log:
`)
		// Unset here (as on a CI machine): the source is skipped, the config is fine.
		out := setup(t).mustRun("check-config", "--config", cfg)
		if !strings.HasPrefix(out, "config OK: 2 brands, 1 source\n") ||
			!strings.Contains(out, "warning: sources[0]: source globex-ftp: password: environment variable GLOBEX_FTP_PASSWORD is not set; returnsd run skips this source") {
			t.Errorf("stdout:\n%s\nwant OK with a warning naming the source and the variable", out)
		}

		c := setup(t)
		c.env["GLOBEX_FTP_PASSWORD"] = "s3cret"
		if out := c.mustRun("check-config", "--config", cfg); !strings.HasPrefix(out, "config OK: 2 brands, 1 source\n") ||
			strings.Contains(out, "warning") {
			t.Errorf("with the variable set:\n%s", out)
		}
	})

	t.Run("AFileThatCannotBeReadIsOneLine", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "returnsd.yaml")
		checkOneLineError(t, setup(t).run("check-config", "--config", missing), 1, "no such file or directory")
	})

	t.Run("ReadsTheConfigNamedByRETURNSD_CONFIG", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		cfg := filepath.Join(dir, "returnsd.yaml")
		if err := os.WriteFile(cfg, []byte("brands: []\nschedules: {report: \"0 7 * *\"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c := setup(t)
		c.env["RETURNSD_CONFIG"] = cfg
		o := c.run("check-config")
		if o.code != 1 || !strings.Contains(o.stderr, cfg+`: schedules.report: "0 7 * *" has 4 fields`) {
			t.Errorf("exit %d, stderr:\n%s", o.code, o.stderr)
		}
	})

	t.Run("MistakesAreUsageErrors", func(t *testing.T) {
		t.Parallel()
		checkOneLineError(t, setup(t).run("check-config", "returnsd.yaml"), 2, "check-config takes no arguments")
		checkOneLineError(t, setup(t).run("check-config", "--at", "tomorrow"), 2, "not an RFC 3339 time")
		checkOneLineError(t, setup(t).run("check-config", "--verbose"), 2, "flag provided but not defined")
	})
}

// checkLines fails unless text is exactly the lines want.
func checkLines(t *testing.T, text string, want []string) {
	t.Helper()
	if got := strings.TrimSuffix(text, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
