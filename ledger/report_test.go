package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// receiveNamed records a file with the given name and bytes, as a source would.
func (b *testBundle) receiveNamed(l *Ledger, brand, name, body string) Received {
	b.t.Helper()
	sum := sha256.Sum256([]byte(body))
	r, err := l.Receive(b.ctx, ReceiveParams{Brand: brand, Source: "acme-sftp", Name: name,
		Size: int64(len(body)), SHA256: sum[:], Body: strings.NewReader(body)})
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

// today is a span around the test's own clock: everything the test writes falls in it.
func today() Span {
	now := time.Now()
	return Span{From: now.Add(-time.Hour), To: now.Add(time.Hour)}
}

func (b *testBundle) activity(l *Ledger, p ActivityParams) Activity {
	b.t.Helper()
	if p.Day.From.IsZero() {
		p.Day = today()
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	a, err := l.Activity(b.ctx, p)
	if err != nil {
		b.t.Fatal(err)
	}
	return a
}

// tallyKey is a tally without its brand, as "OUTCOME CODE OPERATION rows sale payout".
func tallyKey(t Tally) string {
	return strings.Join([]string{string(t.Outcome), string(t.Code), t.Operation,
		strconv.Itoa(t.Rows), t.SaleAmountChange.String(), t.PayoutChange.String()}, " ")
}

// loadAndUpdate imports three acme sales and applies a file that modifies,
// reverses and approves them, with a rejected and a duplicate row.
func (b *testBundle) loadAndUpdate(l *Ledger) (imported, updated Summary) {
	b.t.Helper()
	imported = b.importActions(l, "acme", sale(5001, "100.00"), sale(5002, "200.00"), sale(5003, "50.00"))
	updated, _ = b.apply(l, "acme", modify(5001, "80.00"), reverse(5002), approve(5003), reverse(9999), modify(5001, "70.00"))
	return imported, updated
}

func TestFileTallies(t *testing.T) {
	t.Parallel()

	t.Run("ACompletedFileIsTalliedByOutcomeCodeAndOperationWithItsChanges", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		imported, updated := b.loadAndUpdate(l)

		a := b.activity(l, ActivityParams{})

		var got []string
		for _, tl := range a.Tallies {
			got = append(got, tallyKey(tl))
		}
		want := []string{
			"APPLIED  APPROVE 1 0.00 0.00",
			"APPLIED  CREATE 3 350.00 29.75",
			"APPLIED  MODIFY 1 -20.00 -1.70",
			"APPLIED  REVERSE 1 -200.00 -17.00",
			"DUPLICATE_ROW DUPLICATE_OPERATION MODIFY 1 0.00 0.00",
			"REJECTED ACTION_NOT_FOUND REVERSE 1 0.00 0.00",
		}
		if !slices.Equal(got, want) {
			t.Errorf("tallies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var stored int
		// The tallies are kept in the ledger, not computed as the report reads them.
		if err := l.pool.QueryRow(b.ctx, "SELECT sum(rows) FROM file_tallies WHERE file_id IN ($1, $2)",
			imported.FileID, updated.FileID).Scan(&stored); err != nil || stored != 8 {
			t.Errorf("file_tallies hold %d rows of the two files (%v), want 8", stored, err)
		}
	})

	t.Run("AFileCompletedBeforeTalliesIsReadFromItsOutcomes", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.loadAndUpdate(l)
		before := b.activity(l, ActivityParams{})

		b.exec(l, "DELETE FROM file_tallies")

		after := b.activity(l, ActivityParams{})
		if !slices.Equal(before.Tallies, after.Tallies) {
			t.Errorf("from the outcomes:\n%+v\nfrom the tallies:\n%+v", after.Tallies, before.Tallies)
		}
	})

	t.Run("ADryRunLeavesNoTallies", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(5001, "100.00"))
		_, err := l.ApplyActionUpdates(b.ctx, ApplyParams{Brand: "acme", Actor: "test", DryRun: true},
			iter([]processors.ActionUpdate{{Line: 2, ActionID: 5001, Operation: processors.Reverse, Reason: "RETURNED"}}))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := l.pool.QueryRow(b.ctx, "SELECT count(*) FROM file_tallies WHERE operation = 'REVERSE'").Scan(&n); err != nil || n != 0 {
			t.Errorf("%d tallies of the dry run (%v)", n, err)
		}
	})
}

func TestActivity(t *testing.T) {
	t.Parallel()

	t.Run("ListsTheDaysFilesWithTheirStatusCountsAndReasons", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		imported, updated := b.loadAndUpdate(l)
		bad := b.receiveNamed(l, "acme", "credit_notes.csv", "Foo,Bar\n1,2\n")
		if _, err := l.Quarantine(b.ctx, bad.FileID, outcome.UnknownKind, "no known kind has the columns Foo, Bar"); err != nil {
			t.Fatal(err)
		}
		again := b.receiveNamed(l, "acme", "again.csv", "file 1 of a test that was applied")
		if _, err := l.ImportActions(b.ctx, ApplyParams{FileID: again.FileID, Brand: "acme", Actor: "test"},
			iter([]processors.ActionRecord{})); err != nil {
			t.Fatal(err)
		}
		dup := b.receiveNamed(l, "acme", "again (1).csv", "file 1 of a test that was applied")
		waiting := b.receiveNamed(l, "globex", "later.csv", "not applied yet")

		a := b.activity(l, ActivityParams{})

		type row struct {
			id     int64
			brand  string
			status outcome.FileStatus
			code   outcome.QuarantineCode
			counts [4]int
		}
		var got []row
		for _, f := range a.Files {
			got = append(got, row{f.ID, f.Brand, f.Status, f.Code, [4]int{f.Rows, f.Applied, f.Rejected, f.Duplicate}})
		}
		want := []row{
			{imported.FileID, "acme", outcome.Completed, "", [4]int{3, 3, 0, 0}},
			{updated.FileID, "acme", outcome.Completed, "", [4]int{5, 3, 1, 1}},
			{bad.FileID, "acme", outcome.Quarantined, outcome.UnknownKind, [4]int{}},
			{again.FileID, "acme", outcome.Completed, "", [4]int{}},
			{dup.FileID, "acme", outcome.DuplicateFile, "", [4]int{}},
			{waiting.FileID, "globex", outcome.Received, "", [4]int{}},
		}
		if !slices.Equal(got, want) {
			t.Errorf("files:\n%+v\nwant:\n%+v", got, want)
		}
		q := a.Files[2]
		if q.Name != "credit_notes.csv" || q.Source != "acme-sftp" || !strings.Contains(q.Reason, "Foo, Bar") || q.FinishedAt.IsZero() {
			t.Errorf("quarantined file: %+v", q)
		}
		if d := a.Files[4]; d.DuplicateOf != again.FileID || d.Reason == "" {
			t.Errorf("duplicate file: %+v", d)
		}
		if !a.Files[5].FinishedAt.IsZero() {
			t.Errorf("a waiting file has finished: %+v", a.Files[5])
		}
	})

	t.Run("AnArchiveIsCountedAsTheFilesItHolds", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		body := "zip bytes"
		sum := sha256.Sum256([]byte(body))
		child := func(name string) Child {
			s := sha256.Sum256([]byte(name))
			return Child{Name: name, Size: int64(len(name)), SHA256: s[:], Body: strings.NewReader(name)}
		}
		r, err := l.Receive(b.ctx, ReceiveParams{Brand: "acme", Source: "drop", Name: "both.zip", Size: int64(len(body)),
			SHA256: sum[:], Body: strings.NewReader(body), Children: []Child{child("a.csv"), child("b.csv")}})
		if err != nil {
			t.Fatal(err)
		}

		a := b.activity(l, ActivityParams{})

		if len(a.Files) != 2 || a.Files[0].Parent != r.FileID || a.Files[1].Parent != r.FileID {
			t.Errorf("files: %+v", a.Files)
		}
	})

	t.Run("LeavesOutOtherDaysAndCountsThemInTheTrend", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		imported, updated := b.loadAndUpdate(l)
		b.exec(l, "UPDATE received_files SET received_at = received_at - interval '1 day' WHERE id = $1", imported.FileID)
		day := today()
		yesterday := Span{day.From.Add(-24 * time.Hour), day.To.Add(-24 * time.Hour)}
		before := Span{yesterday.From.Add(-24 * time.Hour), yesterday.From}

		a := b.activity(l, ActivityParams{Day: day, Trend: []Span{before, yesterday, day}})

		if len(a.Files) != 1 || a.Files[0].ID != updated.FileID {
			t.Errorf("files of the day: %+v", a.Files)
		}
		for _, tl := range a.Tallies {
			if tl.Operation == "CREATE" {
				t.Errorf("yesterday's import is in today's rows: %+v", tl)
			}
		}
		want := []TrendCount{
			{Span: before},
			{Span: yesterday, Files: 1, Completed: 1, Applied: 3},
			{Span: day, Files: 1, Completed: 1, Applied: 3, Rejected: 1, DuplicateRows: 1},
		}
		if !slices.Equal(a.Trend, want) {
			t.Errorf("trend:\n%+v\nwant:\n%+v", a.Trend, want)
		}
	})

	t.Run("CountsLocksPayoutsAndDepositsOfTheDayWithTheBalancesNow", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.loadAndUpdate(l)
		// 5001 (80.00, payout 6.80) and the approved 5003 (4.25) lock and are
		// paid from an empty balance: both delayed.
		b.lifecycle(l, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
		b.deposit(l, "acme", "5.00")

		a := b.activity(l, ActivityParams{})

		var got []string
		for _, e := range a.Events {
			got = append(got, e.Brand+" "+e.Kind+" "+strconv.Itoa(e.Events)+" "+e.BalanceDelta.String())
		}
		want := []string{"acme DEPOSIT 1 5.00", "acme LOCK 2 0.00", "acme PAY 2 -11.05"}
		if !slices.Equal(got, want) {
			t.Errorf("events: %q, want %q", got, want)
		}
		wantBrands := []BrandStanding{
			{Brand: "acme", Name: "ACME Outdoor", Currency: "USD", Balance: -605, DelayedPayouts: 2, DelayedAmount: 1105},
			{Brand: "globex", Name: "Globex", Currency: "EUR"},
		}
		if !slices.Equal(a.Brands, wantBrands) {
			t.Errorf("brands: %+v", a.Brands)
		}
		later := b.activity(l, ActivityParams{Day: Span{time.Now().Add(time.Hour), time.Now().Add(25 * time.Hour)}})
		if len(later.Events) != 0 || len(later.Files) != 0 || len(later.Tallies) != 0 {
			t.Errorf("another day has today's activity: %+v", later)
		}
	})

	t.Run("CountsInquiriesResolvedInTheDayAndOpenOnesByAge", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		now := time.Now().Truncate(time.Second)
		b.importInquiries(l, "acme", now,
			inquiry("INQ-1", 301, "ORD-1", now.Add(-72*time.Hour)),
			inquiry("INQ-2", 302, "ORD-2", now.Add(-72*time.Hour)),
			inquiry("INQ-3", 303, "ORD-3", now.Add(-72*time.Hour)),
			inquiry("INQ-4", 304, "ORD-4", now.Add(-12*24*time.Hour)),
			inquiry("INQ-5", 305, "ORD-5", now.Add(-40*24*time.Hour)),
		)
		b.resolve(l, "acme", now, valid("INQ-1"), declined("INQ-2", "Transaction cannot be traced"))

		a := b.activity(l, ActivityParams{Now: now, OpenAgeDays: []int{7, 30}})

		wantResolved := []InquiryResolution{{"acme", "DECLINED", 1, 0}, {"acme", "VALID", 1, 0}}
		if !slices.EqualFunc(a.InquiriesResolved, wantResolved, func(x, y InquiryResolution) bool { return x == y }) {
			t.Errorf("resolved: %+v", a.InquiriesResolved)
		}
		if len(a.OpenInquiries) != 1 {
			t.Fatalf("open: %+v", a.OpenInquiries)
		}
		o := a.OpenInquiries[0]
		if o.Brand != "acme" || o.Open != 3 || !slices.Equal(o.ByAge, []int{1, 1, 1}) || o.OldestID != "INQ-5" ||
			!o.OldestSubmittedAt.Equal(now.Add(-38*24*time.Hour)) {
			t.Errorf("open: %+v", o)
		}
		var created, received int
		for _, tl := range a.Tallies {
			switch tl.Operation {
			case "CREATE":
				created += tl.Rows // the VALID inquiry's action
			case "INQUIRY":
				received += tl.Rows
			}
		}
		if created != 1 || received != 5 {
			t.Errorf("%d actions created and %d inquiries received, want 1 and 5: %+v", created, received, a.Tallies)
		}
	})

	t.Run("ListsSourcesFailingNowOrThatFailedInTheDay", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		now := time.Now().Truncate(time.Microsecond)
		backoff := func(int) time.Duration { return time.Minute }
		for _, f := range []struct {
			source string
			at     time.Time
			ok     bool
		}{
			{"acme-sftp", now.Add(-30 * time.Minute), false},
			{"acme-sftp", now.Add(-10 * time.Minute), false},
			{"drop", now.Add(-20 * time.Minute), false},
			{"drop", now.Add(-5 * time.Minute), true},
			{"old", now.Add(-72 * time.Hour), false},
			{"old", now.Add(-71 * time.Hour), true},
		} {
			var err error
			if f.ok {
				err = l.RecordPollSuccess(b.ctx, f.source, f.at)
			} else {
				_, err = l.RecordPollFailure(b.ctx, f.source, f.at, "dial tcp: connection refused", backoff)
			}
			if err != nil {
				t.Fatal(err)
			}
		}

		a := b.activity(l, ActivityParams{})

		if len(a.Sources) != 2 {
			t.Fatalf("sources: %+v", a.Sources)
		}
		s := a.Sources[0]
		if s.Source != "acme-sftp" || s.Failures != 2 || !s.FailingSince.Equal(now.Add(-30*time.Minute)) ||
			s.LastError != "dial tcp: connection refused" || !s.NextAttempt.Equal(now.Add(-9*time.Minute)) {
			t.Errorf("failing source: %+v", s)
		}
		if s := a.Sources[1]; s.Source != "drop" || s.Failures != 0 || !s.LastFailure.Equal(now.Add(-20*time.Minute)) ||
			!s.LastSuccess.Equal(now.Add(-5*time.Minute)) {
			t.Errorf("recovered source: %+v", s)
		}
	})

	t.Run("ABrandReadsOnlyItsOwn", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.loadAndUpdate(l)
		b.importActions(l, "globex", processors.ActionRecord{ActionID: 7001, TrackerID: 2001, Oid: "G-1",
			Amount: amt("10.00"), Currency: "EUR"})

		a := b.activity(l, ActivityParams{Brand: "globex", Trend: []Span{today()}})

		if len(a.Brands) != 1 || a.Brands[0].Brand != "globex" || len(a.Files) != 1 || a.Files[0].Brand != "globex" {
			t.Errorf("brands %+v, files %+v", a.Brands, a.Files)
		}
		if len(a.Tallies) != 1 || a.Tallies[0].Brand != "globex" || a.Tallies[0].SaleAmountChange != 1000 {
			t.Errorf("tallies %+v", a.Tallies)
		}
		if a.Trend[0].Files != 1 || a.Trend[0].Applied != 1 {
			t.Errorf("trend %+v", a.Trend)
		}
		if _, err := l.Activity(b.ctx, ActivityParams{Day: today(), Brand: "initech"}); !errors.Is(err, ErrUnknownBrand) {
			t.Errorf("an unknown brand: %v", err)
		}
	})
}

func TestParseTotal(t *testing.T) {
	for s, want := range map[string]money.Amount{
		"0": 0, "0.00": 0, "-11.05": -1105, "5.5": 550, "12345678901234.50": 1234567890123450,
	} {
		if got, err := parseTotal(s); err != nil || got != want {
			t.Errorf("parseTotal(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-", "1.234", "abc", "99999999999999999999.00"} {
		if _, err := parseTotal(s); err == nil {
			t.Errorf("parseTotal(%q) succeeded", s)
		}
	}
}

// TestMigrationTalliesTheEventsAlreadyInTheLedger: a ledger that locked, paid
// and took deposits before migration 00010 has those events tallied by it, so
// the report of an earlier day counts them too.
func TestMigrationTalliesTheEventsAlreadyInTheLedger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	db := stdlib.OpenDBFromPool(l.pool)
	defer db.Close()
	provider, err := newProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	_, err = l.pool.Exec(ctx, `
		INSERT INTO brands (slug, name, currency, timezone, payout_delay_days) VALUES ('acme', 'ACME', 'USD', 'UTC', 15);
		INSERT INTO ledger_events (at, brand_id, kind, actor, balance_delta) VALUES ('2026-11-01 10:00Z', 1, 'DEPOSIT', 'cli', 50);
		INSERT INTO ledger_events (at, brand_id, action_id, kind, actor, old_state, new_state, old_amount, new_amount,
			old_payout, new_payout, balance_delta)
		SELECT '2026-11-02 05:00Z', 1, g, k, 'lifecycle', 'PENDING', 'LOCKED', 10, 10, 1, 1, CASE k WHEN 'PAY' THEN -1 END
		FROM generate_series(1, 3) g CROSS JOIN (VALUES ('LOCK'), ('PAY')) v (k);
		INSERT INTO ledger_events (at, brand_id, action_id, kind, actor, file_id, line, new_state, new_amount, new_payout)
		VALUES ('2026-11-02 05:00Z', 1, 9, 'CREATE', 'cli', 1, 2, 'PENDING', 10, 1)`)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := provider.Up(ctx); err != nil {
		t.Fatal(err)
	}

	rows, err := l.pool.Query(ctx, `SELECT to_char(at AT TIME ZONE 'UTC', 'MM-DD HH24') || ' ' || kind || ' ' || events || ' ' || balance_delta
		FROM event_tallies ORDER BY at, kind`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"11-01 10 DEPOSIT 1 50.00", "11-02 05 LOCK 3 0.00", "11-02 05 PAY 3 -3.00"}
	if !slices.Equal(got, want) {
		t.Errorf("event tallies %q, want %q", got, want)
	}
}
