package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The fixture's header; the result file repeats it, then adds the result columns.
var returnsHeader = []string{"ActionId", "Oid", "ActionTrackerId", "Amount", "CurrencyCode", "Reason", "RequestId", "Note"}

var resultColumns = []string{"Line", "Outcome", "ErrorCode", "Message", "ResultActionId",
	"OldAmount", "NewAmount", "OldPayout", "NewPayout"}

// wantRow is what the result file says about one row of fixtures/acme_returns.csv.
type wantRow struct {
	line, outcome, code, actionID, oldAmount, newAmount, oldPayout, newPayout string
}

// acmeReturnsOutcomes is every row of fixtures/acme_returns.csv applied to
// fixtures/acme_actions.csv (acme pays 8.5% on tracker 1001).
var acmeReturnsOutcomes = []wantRow{
	{"2", "APPLIED", "", "5001", "120.00", "0.00", "10.20", "0.00"},         // RETURNED without Amount: REVERSE
	{"3", "APPLIED", "", "5002", "80.00", "60.00", "6.80", "5.10"},          // ORDER_UPDATE 60.00: MODIFY, payout recomputed
	{"4", "APPLIED", "", "5008", "45.50", "0.00", "3.87", "0.00"},           // by Oid: the newest ORD-1007 is 5008
	{"5", "APPLIED", "", "5003", "250.00", "250.00", "21.25", "21.25"},      // APPROVED
	{"6", "REJECTED", "ACTION_LOCKED", "5006", "", "", "", ""},              // LOCKED is never changed by a file
	{"7", "REJECTED", "CPC_NOT_REVERSIBLE", "5005", "", "", "", ""},         // a click
	{"8", "REJECTED", "INVALID_AMOUNT", "", "", "", "", ""},                 // 12.345
	{"9", "REJECTED", "AMOUNT_REQUIRED", "", "", "", "", ""},                // ORDER_UPDATE without Amount
	{"10", "REJECTED", "ACTION_NOT_FOUND", "", "", "", "", ""},              // 9999
	{"11", "DUPLICATE_ROW", "DUPLICATE_OPERATION", "5002", "", "", "", ""},  // second MODIFY of 5002
	{"12", "REJECTED", "INVALID_REASON", "", "", "", "", ""},                // a formula as the reason
	{"13", "DUPLICATE_ROW", "DUPLICATE_REQUEST_ID", "5001", "", "", "", ""}, // RQ-1 again, same content
}

// checkAcmeReturnsResult asserts a result file of fixtures/acme_returns.csv row by row.
func checkAcmeReturnsResult(t *testing.T, text string) {
	t.Helper()
	recs := readCSV(t, text)
	if want := append(slices.Clone(returnsHeader), resultColumns...); !slices.Equal(recs[0], want) {
		t.Fatalf("result header = %q, want %q", recs[0], want)
	}
	if len(recs)-1 != len(acmeReturnsOutcomes) {
		t.Fatalf("result has %d rows, want one per input row (%d)", len(recs)-1, len(acmeReturnsOutcomes))
	}
	n := len(returnsHeader)
	for i, w := range acmeReturnsOutcomes {
		r := recs[i+1]
		got := wantRow{r[n], r[n+1], r[n+2], r[n+4], r[n+5], r[n+6], r[n+7], r[n+8]}
		if got != w {
			t.Errorf("result row %d:\n got %+v\nwant %+v", i+1, got, w)
		}
		if (w.outcome == "APPLIED") != (r[n+3] == "") {
			t.Errorf("line %s: Message %q: want one exactly for rows not applied", w.line, r[n+3])
		}
	}
	// The input cells come back as written, but a formula is defused with a leading '.
	if got, want := recs[11][5], `'=HYPERLINK("http://x")`; got != want {
		t.Errorf("Reason of line 12 in the result = %q, want %q", got, want)
	}
	if !strings.Contains(text, `"'=HYPERLINK(""http://x"")"`) {
		t.Errorf("the result file does not hold the escaped formula cell as CSV text:\n%s", text)
	}
	for i, r := range recs {
		for j, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("result record %d cell %d starts a formula: %q", i+1, j+1, cell)
			}
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()

	t.Run("AppliesTheFilePrintsASummaryAndWritesTheResultNextToIt", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)

		out := c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))

		resultPath := b.path("result_acme_returns.csv")
		wantSummary := []string{
			"COMPLETED (file 2): action-updates",
			"  rows 12: applied 4, rejected 6, duplicate 2",
			"  ACTION_LOCKED                1",
			"  ACTION_NOT_FOUND             1",
			"  AMOUNT_REQUIRED              1",
			"  CPC_NOT_REVERSIBLE           1",
			"  DUPLICATE_OPERATION          1",
			"  DUPLICATE_REQUEST_ID         1",
			"  INVALID_AMOUNT               1",
			"  INVALID_REASON               1",
			"  result: " + resultPath,
		}
		if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); !slices.Equal(got, wantSummary) {
			t.Errorf("summary:\n%s\nwant:\n%s", out, strings.Join(wantSummary, "\n"))
		}
		result, err := os.ReadFile(resultPath)
		if err != nil {
			t.Fatal(err)
		}
		checkAcmeReturnsResult(t, string(result))
		if !bytes.Contains(result, []byte("\r\n")) {
			t.Errorf("result file lines do not end in CRLF")
		}
		if leftovers, _ := filepath.Glob(b.path(".result-*")); len(leftovers) > 0 {
			t.Errorf("temporary result files left behind: %v", leftovers)
		}
		files := b.receivedFiles(t)
		if len(files) != 2 || files[1].status != "COMPLETED" || files[1].name != "acme_returns.csv" {
			t.Errorf("received files = %+v, want the import and the apply, COMPLETED", files)
		}
		if got, want := b.storedSHA256(t, files[1].id), fileSHA256(t, b.path("acme_returns.csv")); got != want {
			t.Errorf("the ledger keeps other bytes than the file's")
		}
	})

	t.Run("FlagsMayFollowTheFile", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)

		c.mustRun("apply", b.path("acme_returns.csv"), "--brand", "acme")

		result, err := os.ReadFile(b.path("result_acme_returns.csv"))
		if err != nil {
			t.Fatal(err)
		}
		checkAcmeReturnsResult(t, string(result))
	})

	t.Run("TheSameFileAgainIsADuplicateChangesNothingAndGetsTheOriginalsResult", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))
		before := c.exportCSV()
		events := b.queryInt(t, "SELECT count(*) FROM ledger_events")
		firstResult, err := os.ReadFile(b.path("result_acme_returns.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(b.path("result_acme_returns.csv")); err != nil {
			t.Fatal(err)
		}

		out := c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))

		if want := "DUPLICATE_FILE (file 3): the same bytes were applied as file 2; nothing changed\n" +
			"  result (of file 2): " + b.path("result_acme_returns.csv") + "\n"; out != want {
			t.Errorf("stdout = %q, want %q", out, want)
		}
		if after := c.exportCSV(); after != before {
			t.Errorf("export changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM ledger_events"); got != events {
			t.Errorf("ledger events: %d, want %d as before", got, events)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM received_files WHERE status = 'DUPLICATE_FILE' AND duplicate_of = 2"); got != 1 {
			t.Errorf("DUPLICATE_FILE records of file 2: %d, want 1", got)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id = 3"); got != 0 {
			t.Errorf("the duplicate file has %d row outcomes, want none", got)
		}
		if secondResult, _ := os.ReadFile(b.path("result_acme_returns.csv")); !bytes.Equal(secondResult, firstResult) {
			t.Errorf("the duplicate's result file differs from the original's:\n%s\nwant:\n%s", secondResult, firstResult)
		}
	})

	t.Run("ADryRunOfAnAppliedFileSaysDuplicateAsTheRealApplyWould", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))
		files := b.queryInt(t, "SELECT count(*) FROM received_files")

		out := c.mustRun("apply", "--brand", "acme", "--dry-run", "--result", b.path("dry.csv"), b.path("acme_returns.csv"))

		if !strings.HasPrefix(out, "dry run: DUPLICATE_FILE") {
			t.Errorf("stdout = %q, want a dry-run DUPLICATE_FILE", out)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM received_files"); got != files {
			t.Errorf("a dry run recorded %d received files", got-files)
		}
		dry, err := os.ReadFile(b.path("dry.csv"))
		if err != nil {
			t.Fatal(err)
		}
		checkAcmeReturnsResult(t, string(dry))
	})

	t.Run("DryRunWritesTheResultAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		before := c.exportCSV()
		events := b.queryInt(t, "SELECT count(*) FROM ledger_events")

		out := c.mustRun("apply", "--brand", "acme", "--dry-run", b.path("acme_returns.csv"))

		if !strings.HasPrefix(out, "dry run: action-updates, nothing changed\n  rows 12: applied 4, rejected 6, duplicate 2\n") {
			t.Errorf("summary:\n%s", out)
		}
		result, err := os.ReadFile(b.path("result_acme_returns.csv"))
		if err != nil {
			t.Fatal(err)
		}
		checkAcmeReturnsResult(t, string(result))
		if after := c.exportCSV(); after != before {
			t.Errorf("a dry run changed the ledger:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM ledger_events"); got != events {
			t.Errorf("ledger events: %d, want %d as before", got, events)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM received_files WHERE name <> 'acme_actions.csv'"); got != 0 {
			t.Errorf("a dry run recorded %d received files", got)
		}
		if got := b.queryInt(t, "SELECT count(*) FROM request_ids"); got != 0 {
			t.Errorf("a dry run took %d request ids", got)
		}

		// And the real run afterwards does what the dry run said.
		c.mustRun("apply", "--brand", "acme", "--result", b.path("real.csv"), b.path("acme_returns.csv"))
		real, _ := os.ReadFile(b.path("real.csv"))
		if !bytes.Equal(real, result) {
			t.Errorf("the dry run's result differs from the real run's:\ndry:\n%s\nreal:\n%s", result, real)
		}
	})

	t.Run("ResultDashWritesTheResultToStdoutAndTheSummaryToStderr", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)

		o := c.run("apply", "--brand", "acme", "--result", "-", b.path("acme_returns.csv"))

		if o.code != 0 {
			t.Fatalf("exit %d: %s", o.code, o.stderr)
		}
		checkAcmeReturnsResult(t, o.stdout)
		if !strings.Contains(o.stderr, "COMPLETED (file 2): action-updates") || strings.Contains(o.stderr, "result:") {
			t.Errorf("stderr should carry the summary without a result path:\n%s", o.stderr)
		}
		if _, err := os.Stat(b.path("result_acme_returns.csv")); !os.IsNotExist(err) {
			t.Errorf("with --result - a result file was written too (%v)", err)
		}
	})

	t.Run("AResultFileIsRefused", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		data, _ := os.ReadFile(b.path("acme_returns.csv"))
		path := b.path("result_x.csv")
		os.WriteFile(path, data, 0o644)

		o := c.run("apply", "--brand", "acme", path)

		checkOneLineError(t, o, 1, "result_x.csv is a returnsd result file; it is never applied")
		if got := b.queryInt(t, "SELECT count(*) FROM received_files WHERE name = 'result_x.csv'"); got != 0 {
			t.Errorf("the result file was recorded as received")
		}
		if _, err := os.Stat(b.path("result_result_x.csv")); !os.IsNotExist(err) {
			t.Errorf("a result of the result file was written (%v)", err)
		}
	})

	t.Run("AnActionsExportIsNotAnUpdateFile", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		c.mustRun("migrate")
		before := c.exportCSV()

		o := c.run("apply", "--brand", "acme", b.path("acme_actions.csv"))

		// Detected as an actions export, which apply does not accept.
		checkOneLineError(t, o, 3, "acme_actions.csv quarantined: UNKNOWN_KIND: ")
		if after := c.exportCSV(); after != before {
			t.Errorf("export changed")
		}
	})
}

func TestExportActions(t *testing.T) {
	t.Parallel()

	exportColumns := []string{"ActionId", "Oid", "ActionTrackerId", "PartnerId", "State", "Amount", "Payout",
		"Currency", "LockDate", "PayoutDate", "ModificationCount"}
	// A few actions after fixtures/acme_returns.csv, in exportColumns' order.
	want := map[string][]string{
		"5001": {"5001", "ORD-1001", "1001", "301", "REVERSED", "0.00", "0.00", "USD", "2026-12-02T10:15:00-05:00", "2026-12-17T10:15:00-05:00", "0"},
		"5002": {"5002", "ORD-1002", "1001", "301", "PENDING", "60.00", "5.10", "USD", "2026-12-03T09:00:00-05:00", "2026-12-18T09:00:00-05:00", "1"},
		"5003": {"5003", "ORD-1003", "1001", "302", "APPROVED", "250.00", "21.25", "USD", "2026-12-04T00:00:00-05:00", "2026-12-19T00:00:00-05:00", "0"},
		"5004": {"5004", "LEAD-77", "1002", "302", "PENDING", "0.00", "4.00", "USD", "2026-12-05T00:00:00-05:00", "2026-12-20T00:00:00-05:00", "0"},
		// Locked 30 days after 2026-10-01 in New York, across the end of daylight saving time.
		"5006": {"5006", "ORD-1006", "1001", "303", "LOCKED", "60.00", "5.10", "USD", "2026-10-31T00:00:00-04:00", "2026-11-15T00:00:00-05:00", "0"},
		"5007": {"5007", "ORD-1007", "1001", "304", "PENDING", "45.50", "3.87", "USD", "2026-12-06T00:00:00-05:00", "2026-12-21T00:00:00-05:00", "0"},
		"5008": {"5008", "ORD-1007", "1001", "304", "REVERSED", "0.00", "0.00", "USD", "2026-12-08T00:00:00-05:00", "2026-12-23T00:00:00-05:00", "0"},
	}
	setup := func(t *testing.T) *cli {
		c, b := setupLoaded(t)
		c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv"))
		return c
	}

	t.Run("CSVHasTheColumnsOfTheIssueAndTheLedgersValues", func(t *testing.T) {
		t.Parallel()
		c := setup(t)

		recs := readCSV(t, c.exportCSV())

		if !slices.Equal(recs[0], exportColumns) {
			t.Fatalf("header = %q, want %q", recs[0], exportColumns)
		}
		if len(recs) != 11 {
			t.Fatalf("%d actions, want the 10 of the fixture", len(recs)-1)
		}
		for i, r := range recs[1:] {
			if want := []string{"5001", "5002", "5003", "5004", "5005", "5006", "5007", "5008", "5009", "5010"}[i]; r[0] != want {
				t.Errorf("action %d is %s, want %s: ActionId order", i+1, r[0], want)
			}
			if w, ok := want[r[0]]; ok && !slices.Equal(r, w) {
				t.Errorf("action %s:\n got %q\nwant %q", r[0], r, w)
			}
		}
	})

	t.Run("JSONHasTheSameColumnsWithNumbersAsNumbersAndAmountsAsStrings", func(t *testing.T) {
		t.Parallel()
		c := setup(t)

		out := c.mustRun("export", "actions", "--brand", "acme", "--format", "json")

		dec := json.NewDecoder(strings.NewReader(out))
		dec.UseNumber()
		var actions []map[string]any
		if err := dec.Decode(&actions); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, out)
		}
		if len(actions) != 10 {
			t.Fatalf("%d actions, want 10", len(actions))
		}
		for _, a := range actions {
			keys := make([]string, 0, len(a))
			for k := range a {
				keys = append(keys, k)
			}
			if !sameSet(keys, exportColumns) {
				t.Fatalf("keys %q, want exactly %q", keys, exportColumns)
			}
			id, ok := a["ActionId"].(json.Number)
			if !ok {
				t.Fatalf("ActionId %#v is not a number", a["ActionId"])
			}
			w, ok := want[id.String()]
			if !ok {
				continue
			}
			for i, col := range exportColumns {
				switch v := a[col].(type) {
				case json.Number:
					if !slices.Contains([]string{"ActionId", "ActionTrackerId", "PartnerId", "ModificationCount"}, col) {
						t.Errorf("action %s: %s is a number, want a string", id, col)
					}
					if v.String() != w[i] {
						t.Errorf("action %s: %s = %s, want %s", id, col, v, w[i])
					}
				case string:
					if v != w[i] {
						t.Errorf("action %s: %s = %q, want %q", id, col, v, w[i])
					}
				default:
					t.Errorf("action %s: %s = %#v", id, col, v)
				}
			}
		}
	})

	t.Run("ABrandWithoutActionsExportsAHeaderOrAnEmptyArray", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)

		if got := c.mustRun("export", "actions", "--brand", "globex"); got != strings.Join(exportColumns, ",")+"\n" {
			t.Errorf("csv = %q", got)
		}
		if got := c.mustRun("export", "actions", "--brand", "globex", "--format", "json"); strings.TrimSpace(got) != "[\n]" {
			t.Errorf("json = %q", got)
		}
	})
}

func TestConfigFlag(t *testing.T) {
	t.Parallel()

	// A config whose only difference from the example is a file limit the fixture is over.
	setup := func(t *testing.T) (*cli, *testBundle, string) {
		c, b := setupLoaded(t)
		cfg := writeConfig(t, t.TempDir(), "max_file_bytes: 268435456", "max_file_bytes: 100")
		return c, b, cfg
	}
	checkTooLarge := func(t *testing.T, o outcomeOf, b *testBundle) {
		t.Helper()
		checkOneLineError(t, o, 3, "acme_returns.csv quarantined: FILE_TOO_LARGE: ")
		files := b.receivedFiles(t)
		if last := files[len(files)-1]; last.reasonCode != "FILE_TOO_LARGE" {
			t.Errorf("last received file %+v, want FILE_TOO_LARGE", last)
		}
	}

	t.Run("ConfigBeforeTheCommandIsUsed", func(t *testing.T) {
		t.Parallel()
		c, b, cfg := setup(t)
		checkTooLarge(t, c.run("--config", cfg, "apply", "--brand", "acme", b.path("acme_returns.csv")), b)
	})

	t.Run("ConfigEqualsBeforeTheCommandIsUsed", func(t *testing.T) {
		t.Parallel()
		c, b, cfg := setup(t)
		checkTooLarge(t, c.run("--config="+cfg, "apply", "--brand", "acme", b.path("acme_returns.csv")), b)
	})

	t.Run("ConfigAfterTheCommandIsUsed", func(t *testing.T) {
		t.Parallel()
		c, b, cfg := setup(t)
		checkTooLarge(t, c.run("apply", "--brand", "acme", b.path("acme_returns.csv"), "--config", cfg), b)
	})

	t.Run("ReturnsdConfigVariableIsUsed", func(t *testing.T) {
		t.Parallel()
		c, b, cfg := setup(t)
		c.env["RETURNSD_CONFIG"] = cfg
		checkTooLarge(t, c.run("apply", "--brand", "acme", b.path("acme_returns.csv")), b)
	})

	t.Run("WithoutConfigTheEmbeddedExampleIsUsed", func(t *testing.T) {
		t.Parallel()
		c, b, _ := setup(t)
		if out := c.mustRun("apply", "--brand", "acme", b.path("acme_returns.csv")); !strings.HasPrefix(out, "COMPLETED") {
			t.Errorf("stdout: %s", out)
		}
	})

	t.Run("AMissingConfigFileIsAnError", func(t *testing.T) {
		t.Parallel()
		c, b, _ := setup(t)
		o := c.run("--config", filepath.Join(b.dir, "nope.yaml"), "migrate")
		checkOneLineError(t, o, 1, "nope.yaml")
	})
}

func TestErrors(t *testing.T) {
	t.Parallel()

	t.Run("UnknownBrandIsOneLineAndFails", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		checkOneLineError(t, c.run("apply", "--brand", "initech", b.path("acme_returns.csv")), 1, `initech`)
		checkOneLineError(t, c.run("export", "actions", "--brand", "initech"), 1, `initech`)
	})

	t.Run("MissingBrandIsAUsageError", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		checkOneLineError(t, c.run("apply", b.path("acme_returns.csv")), 2, "apply: --brand is required")
		checkOneLineError(t, c.run("import", "actions", b.path("acme_actions.csv")), 2, "--brand is required")
		checkOneLineError(t, c.run("export", "actions"), 2, "export actions: --brand is required")
	})

	t.Run("UnknownCommandIsAUsageError", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		checkOneLineError(t, c.run("frobnicate"), 2, `unknown command "frobnicate"`)
		checkOneLineError(t, c.run("import", "partners"), 2, "import: say what to import")
		checkOneLineError(t, c.run("import", "inquiries"), 2, "import inquiries: --brand is required")
		checkOneLineError(t, c.run("inquiries", "resolve"), 2, "inquiries: say what to do")
		checkOneLineError(t, c.run("export", "partners"), 2, "export: say what to export")
		checkOneLineError(t, c.run("apply", "--brand", "acme", "--frob", "x.csv"), 2, "flag provided but not defined: -frob")
		checkOneLineError(t, c.run("apply", "--brand", "acme", "a.csv", "b.csv"), 2, "give exactly one FILE")
		checkOneLineError(t, c.run("--verbose", "migrate"), 2, "unknown flag --verbose before the command")
		checkOneLineError(t, c.run("export", "actions", "--brand", "acme", "--format", "xml"), 2, `--format is csv or json, not "xml"`)
	})

	t.Run("HelpPrintsUsageAndSucceeds", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		for _, args := range [][]string{nil, {"help"}, {"--help"}} {
			o := c.run(args...)
			if o.code != 0 || !strings.Contains(o.stdout, "Usage:") {
				t.Errorf("returnsd %v: exit %d, stdout %q", args, o.code, o.stdout)
			}
		}
	})

	t.Run("NoDatabaseURLFails", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		delete(c.env, "DATABASE_URL")
		checkOneLineError(t, c.run("migrate"), 1, "no database: set DATABASE_URL")
		checkOneLineError(t, c.run("apply", "--brand", "acme", b.path("acme_returns.csv")), 1, "no database: set DATABASE_URL")
	})

	t.Run("AnUnmigratedSchemaSaysToRunMigrate", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		for _, args := range [][]string{
			{"apply", "--brand", "acme", b.path("acme_returns.csv")},
			{"import", "actions", "--brand", "acme", b.path("acme_actions.csv")},
			{"export", "actions", "--brand", "acme"},
		} {
			checkOneLineError(t, c.run(args...), 1, "run 'returnsd migrate'")
		}
		if _, err := os.Stat(b.path("result_acme_returns.csv")); !os.IsNotExist(err) {
			t.Errorf("a result file was written against an unmigrated database")
		}
	})

	t.Run("MigrateTwiceIsFine", func(t *testing.T) {
		t.Parallel()
		c, _ := setup(t)
		c.mustRun("migrate")
		if out := c.mustRun("migrate"); out != "schema is up to date\n" {
			t.Errorf("stdout = %q", out)
		}
	})

	t.Run("AMissingFileFails", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		checkOneLineError(t, c.run("apply", "--brand", "acme", b.path("nope.csv")), 1, "nope.csv")
	})
}

// checkOneLineError asserts a failed command: its exit status, and an error that
// is one line on stderr starting "returnsd: " and containing want. A usage error
// adds one line pointing at help.
func checkOneLineError(t *testing.T, o outcomeOf, code int, want string) {
	t.Helper()
	if o.code != code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", o.code, code, o.stdout, o.stderr)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSuffix(o.stderr, "\n"), "\n") {
		if strings.HasPrefix(l, "returnsd: ") {
			errLines = append(errLines, l)
		} else if code == 2 && l != "run 'returnsd help' for usage" {
			t.Errorf("unexpected stderr line %q", l)
		}
	}
	if len(errLines) != 1 {
		t.Errorf("stderr has %d error lines, want 1:\n%s", len(errLines), o.stderr)
		return
	}
	if !strings.Contains(errLines[0], want) {
		t.Errorf("error %q does not say %q", errLines[0], want)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestImportsReadThePlatformsCanonicalFormat(t *testing.T) {
	t.Parallel()
	c, b := setup(t)
	c.mustRun("migrate")
	// globex writes windows-1252 with decimal commas and German headers; the
	// platform's own export of its actions is UTF-8 with decimal points.
	actions := b.path("globex_actions.csv")
	os.WriteFile(actions, []byte("ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency\n"+
		"7001,55,2001,BESTELLUNG-Ä1,2026-11-02T10:00:00+01:00,100.00,EUR\n"), 0o644)
	out := c.mustRun("import", "actions", "--brand", "globex", actions)
	if !strings.Contains(out, "applied 1, rejected 0") {
		t.Fatalf("import actions:\n%s", out)
	}
	inquiries := b.path("globex_inquiries.csv")
	os.WriteFile(inquiries, []byte("Inquiry Id,PartnerId,Order Id,Transaction Date,Type,Sale Amount\n"+
		"G-1,55,BESTELLUNG-Ä2,2026-11-02T10:00:00+01:00,UNTRACKED,12.50\n"), 0o644)
	out = c.mustRun("import", "inquiries", "--brand", "globex", inquiries)
	if strings.Contains(out, "INVALID_AMOUNT") || strings.Contains(out, "UNDECODABLE") {
		t.Fatalf("import inquiries read the export in the brand's format:\n%s", out)
	}
	if got := c.mustRun("export", "actions", "--brand", "globex"); !strings.Contains(got, "7001,") || !strings.Contains(got, "BESTELLUNG-Ä1") {
		t.Errorf("export:\n%s", got)
	}
}
