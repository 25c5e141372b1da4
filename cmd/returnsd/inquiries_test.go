package main

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/mailer/smtptest"
)

func TestInquiryCommands(t *testing.T) {
	t.Parallel()

	t.Run("ImportApplyAndExportInquiries", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		out := c.mustRun("import", "inquiries", "--brand", "acme", b.path("acme_inquiries.csv"))
		if !strings.Contains(out, "rows 7: applied 4, rejected 3, duplicate 0") {
			t.Errorf("import summary: %q", out)
		}
		imported, err := os.ReadFile(b.path("result_acme_inquiries.csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"INQ-9004,301,ORD-2004,1001,2026-11-15 12:00,45.00,3.83,INCORRECT,2026-11-15 20:00,5,REJECTED,INQUIRY_TOO_EARLY",
			"INQ-9005,304,ORD-2005,1002,2026-06-01,,4.00,UNTRACKED,2026-11-10 11:00,6,REJECTED,INQUIRY_TOO_LATE",
			"INQ-9006,301,ORD-2001,1001,2026-09-15,200.00,,UNTRACKED,2026-11-11 10:00,7,REJECTED,INQUIRY_ALREADY_OPEN",
		} {
			if !strings.Contains(string(imported), want) {
				t.Errorf("import result lacks %q:\n%s", want, imported)
			}
		}

		// The kind of the resolution file is read from its header.
		out = c.mustRun("apply", "--brand", "acme", b.path("acme_resolutions.csv"))
		if !strings.Contains(out, "rows 6: applied 4, rejected 1, duplicate 1") {
			t.Errorf("apply summary: %q", out)
		}
		result, err := os.ReadFile(b.path("result_acme_resolutions.csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"INQ-9002,APPROVED,,,,,85.00,one item was not eligible,3,APPLIED,,,900000000000001,,85.00,,7.23",
			"INQ-9999,DECLINED,Transaction cannot be traced,,,,,,6,REJECTED,INQUIRY_NOT_FOUND,No inquiry INQ-9999 in this program",
			"7,DUPLICATE_ROW,DUPLICATE_OPERATION",
		} {
			if !strings.Contains(string(result), want) {
				t.Errorf("resolution result lacks %q:\n%s", want, result)
			}
		}
		// INQ-9001's order of Sep 15 locked on Oct 15 and was due on Oct 30: paid at
		// once, with acme's empty balance as a delayed payout.
		if n := b.queryInt(t, `SELECT count(*) FROM actions WHERE oid = 'ORD-2001' AND partner_id = 301
			AND state = 'PAID' AND payout_delayed AND payout = 17.00`); n != 1 {
			t.Errorf("%d paid and delayed actions for ORD-2001", n)
		}
		if got := c.mustRun("export", "balances"); !strings.Contains(got, "acme,USD,-17.00,1,17.00") {
			t.Errorf("balances:\n%s", got)
		}

		// Age in days and Overdue are read at --at: Dec 1, 2026, 12:00 in New York.
		csv := c.mustRun("export", "inquiries", "--brand", "acme", "--at", "2026-12-01T12:00:00-05:00")
		for _, want := range []string{
			"Inquiry Id,Brand,Partner,Order Id,Action Tracker,Transaction Date,Sale Amount,Expected Payout,Final Payout,Type,Status," +
				"Resolution Reason,Resolution Notes,Submission Date,Auto Approval Date,Resolved Date,Customer Id,Age in days,Overdue,ActionId\n",
			"INQ-9001,ACME Outdoor,301,ORD-2001,1001,2026-09-15T14:00:00-04:00,200.00,17.00,17.00,UNTRACKED,VALID,," +
				"confirmed in our order system,2026-11-10T09:00:00-05:00,,",
			"INQ-9007,ACME Outdoor,305,ORD-2007,1001,2026-10-20T11:00:00-04:00,60.00,5.10,,INCORRECT,DECLINED," +
				"Did not meet terms and conditions set by merchant,bought with a staff discount,2026-11-14T10:00:00-05:00,,",
			"INQ-9003,ACME Outdoor,303,ORD-1001,1001,2026-11-02T10:15:00-05:00,120.00,10.20,,UNTRACKED,INCOMPLETE,," +
				"please send the order confirmation,2026-11-09T08:00:00-05:00,,,,22,false,\n",
		} {
			if !strings.Contains(csv, want) {
				t.Errorf("export lacks %q:\n%s", want, csv)
			}
		}
		if !strings.HasSuffix(strings.Split(csv, "\n")[2], ",false,900000000000000") {
			t.Errorf("INQ-9001 does not name its action: %q", strings.Split(csv, "\n")[2])
		}
		var rows []map[string]any
		if err := json.Unmarshal([]byte(c.mustRun("export", "inquiries", "--brand", "acme", "--format", "json")), &rows); err != nil {
			t.Fatal(err)
		}
		// In order of submission: INQ-9003 came first.
		if len(rows) != 4 || rows[0]["Inquiry Id"] != "INQ-9003" || rows[0]["Partner"] != float64(303) ||
			rows[0]["Status"] != "INCOMPLETE" || rows[0]["Brand"] != "ACME Outdoor" {
			t.Errorf("json: %v", rows)
		}
		// Partner 301's status file, with every brand: what changed since the import began.
		file := c.mustRun("export", "inquiries", "--partner", "301", "--since", "2020-01-01T00:00:00Z")
		if lines := strings.Split(strings.TrimSpace(file), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "INQ-9001,") {
			t.Errorf("partner 301's status file:\n%s", file)
		}
		if got := c.mustRun("export", "inquiries", "--partner", "301", "--since", time.Now().Add(time.Hour).Format(time.RFC3339)); strings.Count(got, "\n") != 1 {
			t.Errorf("nothing changed in the future, yet:\n%s", got)
		}
		checkOneLineError(t, c.run("export", "inquiries"), 2, "--brand or --partner is required")
		checkOneLineError(t, c.run("export", "inquiries", "--partner", "301", "--since", "yesterday"), 2, "not an RFC 3339 time")
		checkOneLineError(t, c.run("export", "inquiries", "--brand", "acme", "--type", "LOST"), 2, "UNTRACKED, INCORRECT, DECLINED")
		if got := c.mustRun("export", "inquiries", "--brand", "acme", "--type", "incorrect", "--resolved-from", "2000-01-01"); !strings.Contains(got, "\nINQ-9007,") || strings.Count(got, "\n") != 2 {
			t.Errorf("INCORRECT inquiries resolved since 2000:\n%s", got)
		}

		// Applying the resolutions again changes nothing.
		out = c.mustRun("apply", "--brand", "acme", b.path("acme_resolutions.csv"))
		if !strings.Contains(out, "DUPLICATE_FILE") {
			t.Errorf("second apply: %q", out)
		}
	})

	t.Run("TheWindowIsTheBrandsOwn", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		path := writeConfig(t, b.dir, "window: {min: 24h, max: 3mo}", "window: {min: 2d, max: 10d}")
		out := c.mustRun("import", "inquiries", "--config", path, "--brand", "acme", b.path("acme_inquiries.csv"))
		// Only INQ-9002 (4 days after its order) and INQ-9003 (7 days) fall in 2 to 10 days.
		if !strings.Contains(out, "rows 7: applied 2, rejected 5, duplicate 0") ||
			!strings.Contains(out, "INQUIRY_TOO_LATE             4") {
			t.Errorf("import summary: %q", out)
		}
	})

	t.Run("KindCanBeForcedAndIsChecked", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		o := c.run("apply", "--brand", "acme", "--kind", "inquiry-resolutions", b.path("acme_returns.csv"))
		if o.code != 3 || !strings.Contains(o.stdout+o.stderr, "MISSING_COLUMN") {
			t.Errorf("a returns file forced to inquiry-resolutions: exit %d\n%s%s", o.code, o.stdout, o.stderr)
		}
		checkOneLineError(t, c.run("apply", "--brand", "acme", "--kind", "actions", b.path("acme_returns.csv")), 2,
			"not action-updates or inquiry-resolutions")
		// Partners' submissions are loaded by import inquiries, never by apply.
		o = c.run("apply", "--brand", "acme", b.path("acme_inquiries.csv"))
		if o.code != 3 || !strings.Contains(o.stdout+o.stderr, "UNKNOWN_KIND") {
			t.Errorf("inquiries through apply: exit %d\n%s%s", o.code, o.stdout, o.stderr)
		}
	})

	t.Run("AutoResolveRunsOnlyForBrandsThatAutoResolve", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("import", "inquiries", "--brand", "acme", b.path("acme_inquiries.csv"))
		if out := c.mustRun("inquiries", "auto-resolve"); out != "no brand auto-resolves inquiries\n" {
			t.Errorf("stdout %q", out)
		}
		checkOneLineError(t, c.run("inquiries", "auto-resolve", "--brand", "acme"), 1, "does not auto-resolve")

		path := writeConfig(t, b.dir, "auto_resolve: false", "auto_resolve: true")
		out := c.mustRun("inquiries", "auto-resolve", "--config", path, "--brand", "acme")
		// INQ-9003 claims ORD-1001, which is tracked for partner 301, not 303.
		if out != "acme: declined 0 already tracked for the same partner, 1 credited to another partner\n" {
			t.Errorf("stdout %q", out)
		}
		if n := b.queryInt(t, `SELECT count(*) FROM inquiries WHERE inquiry_id = 'INQ-9003' AND status = 'DECLINED'
			AND resolution_reason = 'Another marketing channel was credited with the sale'`); n != 1 {
			t.Error("INQ-9003 was not declined")
		}
	})

	t.Run("AutoApproveApprovesWhatIsDueUnderTheBrandsRule", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("import", "inquiries", "--brand", "acme", b.path("acme_inquiries.csv"))
		if out := c.mustRun("inquiries", "auto-approve"); out != "no brand approves inquiries automatically\n" {
			t.Errorf("stdout %q", out)
		}
		checkOneLineError(t, c.run("inquiries", "auto-approve", "--brand", "acme"), 1, "has no automatic approval rule")

		path := writeConfig(t, b.dir, "auto_resolve: false", `auto_resolve: false
        auto_approve: {after: 30d, max_payout: "15.00"}`)
		checkOneLineError(t, c.run("inquiries", "auto-approve", "--config", path, "--at", "tomorrow"), 2, "not an RFC 3339 time")
		// INQ-9002 (submitted Nov 12, 7.65) is due on Dec 12; INQ-9001 asks 17.00, over
		// max_payout; INQ-9003's order ORD-1001 is tracked; INQ-9007 is INCORRECT.
		out := c.mustRun("inquiries", "auto-approve", "--config", path, "--at", "2026-12-13T00:00:00-05:00")
		if out != "acme: approved 1 (7.65 USD; locked 1, paid 0, delayed 0 at once); waiting: 0 over the monthly cap, 1 whose order is tracked meanwhile\n" {
			t.Errorf("stdout %q", out)
		}
		if n := b.queryInt(t, `SELECT count(*) FROM inquiries WHERE inquiry_id = 'INQ-9002' AND status = 'VALID'
			AND resolved_by = 'auto-approval' AND final_payout = 7.65`); n != 1 {
			t.Error("INQ-9002 was not approved automatically")
		}
		if n := b.queryInt(t, "SELECT count(*) FROM inquiries WHERE status = 'VALID'"); n != 1 {
			t.Errorf("%d VALID inquiries, want INQ-9002 alone", n)
		}
	})

	t.Run("NotifyTellsEachChangeOnceThoughTheMailServerIsDownForAWhile", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		srv, err := smtptest.Start()
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		}()
		checkOneLineError(t, c.run("inquiries", "notify"), 1, "no smtp section")
		c.env["SMTP_PASSWORD"] = srv.Password
		path := writeConfig(t, b.dir, "        resolution_deadline: 12w", `        resolution_deadline: 12w
      partners:
        - {partner: 301, contact: claims@partner301.example}
        - {partner: 303, contact: claims@partner303.example}`,
			"log:\n", "smtp:\n  address: "+srv.Addr+"\n  ca_file: "+srv.CAFile+"\n  username: "+srv.User+
				"\n  password: ${SMTP_PASSWORD}\n  from: returns@platform.example\n  timeout: 5s\nlog:\n")
		// Partner 301's INQ-9001 and 303's INQ-9003 are accepted, then resolved
		// VALID and INCOMPLETE: four changes to tell.
		c.mustRun("import", "inquiries", "--config", path, "--brand", "acme", b.path("acme_inquiries.csv"))
		c.mustRun("apply", "--config", path, "--brand", "acme", b.path("acme_resolutions.csv"))

		srv.Refuse(true)
		o := c.run("inquiries", "notify", "--config", path, "--at", "2026-11-24T12:00:00Z")
		if o.code != 1 || o.stdout != "partners told of 0 inquiry changes; 4 still to tell\n" || !strings.Contains(o.stderr, "451") {
			t.Errorf("with the server down: exit %d\n%s%s", o.code, o.stdout, o.stderr)
		}
		c.run("inquiries", "notify", "--config", path, "--at", "2026-11-24T12:00:30Z")
		srv.Refuse(false)
		c.mustRun("inquiries", "notify", "--config", path, "--at", "2026-11-24T12:05:00Z")
		if out := c.mustRun("inquiries", "notify", "--config", path, "--at", "2026-11-24T13:00:00Z"); out != "partners told of 0 inquiry changes; 0 still to tell\n" {
			t.Errorf("an hour later: %q", out)
		}
		got := srv.Mail()
		ids := map[string]int{}
		subjects := map[string]bool{}
		for _, m := range got {
			msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
			if err != nil {
				t.Fatal(err)
			}
			ids[msg.Header.Get("Message-Id")]++
			dec := new(mime.WordDecoder)
			subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
			subjects[m.To[0]+" "+subject] = true
		}
		if len(got) != 4 || len(ids) != 4 || srv.Refused() != 2 {
			t.Errorf("%d mails, %d Message-IDs, %d refused; want the 4 changes once each after 2 refusals", len(got), len(ids), srv.Refused())
		}
		for _, want := range []string{
			"claims@partner301.example Inquiry INQ-9001 (ACME Outdoor, order ORD-2001): received",
			"claims@partner301.example Inquiry INQ-9001 (ACME Outdoor, order ORD-2001): approved, final payout 17.00 USD",
			"claims@partner303.example Inquiry INQ-9003 (ACME Outdoor, order ORD-1001): incomplete: more information needed",
		} {
			if !subjects[want] {
				t.Errorf("no mail %q in %v", want, subjects)
			}
		}
	})
}
