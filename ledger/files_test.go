package ledger

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

func TestRequestIDs(t *testing.T) {
	t.Parallel()

	withID := func(u processors.ActionUpdate, id string) processors.ActionUpdate {
		u.RequestID = id
		return u
	}

	t.Run("TheSameRequestIdWithTheSameContentInALaterFileIsADuplicate", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", withID(modify(1, "50"), "R-1"))
		_, out := b.apply(l, "acme", withID(modify(1, "50"), "R-1"))
		wantOutcome(t, out[2], outcome.DuplicateRow, outcome.DuplicateRequestID)
		if got := b.action(l, 1).Mods; got != 1 {
			t.Errorf("applied %d times", got)
		}
	})

	t.Run("TheSameRequestIdWithOtherContentIsAConflict", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", withID(modify(1, "50"), "R-1"))
		_, out := b.apply(l, "acme", withID(modify(1, "70"), "R-1"))
		wantOutcome(t, out[2], outcome.Rejected, outcome.RequestIDConflict)
		wantAction(t, b.action(l, 1), "PENDING", "50.00", "4.25")
	})

	t.Run("RequestIdsRepeatedWithinOneFileFollowTheSameRules", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))
		_, out := b.apply(l, "acme", withID(reverse(1), "R-7"), withID(reverse(1), "R-7"), withID(reverse(2), "R-7"))
		wantOutcome(t, out[2], outcome.Applied, "")
		wantOutcome(t, out[3], outcome.DuplicateRow, outcome.DuplicateRequestID)
		wantOutcome(t, out[4], outcome.Rejected, outcome.RequestIDConflict)
		wantAction(t, b.action(l, 2), "PENDING", "100.00", "8.50")
	})

	t.Run("ARejectedRowDoesNotTakeItsRequestId", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		_, out := b.apply(l, "acme", withID(reverse(2), "R-9"))
		wantOutcome(t, out[2], outcome.Rejected, outcome.ActionNotFound)
		b.importActions(l, "acme", sale(2, "100"))
		_, out = b.apply(l, "acme", withID(reverse(2), "R-9"))
		wantOutcome(t, out[2], outcome.Applied, "")
	})

	t.Run("RequestIdsAreKeptPerBrand", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.importActions(l, "globex", processors.ActionRecord{ActionID: 9, TrackerID: 2001, Oid: "G", Amount: amt("10"), Currency: "EUR"})
		b.apply(l, "acme", withID(reverse(1), "R-1"))
		_, out := b.apply(l, "globex", withID(reverse(9), "R-1"))
		wantOutcome(t, out[2], outcome.Applied, "")
	})
}

func TestReceive(t *testing.T) {
	t.Parallel()

	receive := func(b *testBundle, l *Ledger, brand, body string) Received {
		b.t.Helper()
		sum := sha256.Sum256([]byte(body))
		r, err := l.Receive(b.ctx, ReceiveParams{Brand: brand, Source: "test", Name: "x.csv", Size: int64(len(body)),
			SHA256: sum[:], Body: strings.NewReader(body)})
		if err != nil {
			b.t.Fatal(err)
		}
		return r
	}

	t.Run("TheSameBytesAgainForTheSameBrandAreADuplicateFile", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		first := receive(b, l, "acme", "returns of monday")
		u := reverse(1)
		u.Line = 2
		if _, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: first.FileID, Brand: "acme", Actor: "t"}, iter([]processors.ActionUpdate{u})); err != nil {
			t.Fatal(err)
		}
		again := receive(b, l, "acme", "returns of monday")
		if again.Status != outcome.DuplicateFile || again.DuplicateOf != first.FileID {
			t.Errorf("got %+v, want DUPLICATE_FILE of %d", again, first.FileID)
		}
		if other := receive(b, l, "globex", "returns of monday"); other.Status != outcome.Received {
			t.Errorf("the same bytes for another brand: %+v", other)
		}
	})

	t.Run("ReceivedFilesListsEveryBrandsFilesOldestFirstAPageAtATime", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		a := receive(b, l, "acme", "first")
		g := receive(b, l, "globex", "second")
		c := receive(b, l, "acme", "third")
		if changed, err := l.Quarantine(b.ctx, c.FileID, outcome.EmptyFile, "no header row"); err != nil || !changed {
			t.Fatalf("Quarantine: %v, %v", changed, err)
		}
		if changed, err := l.Quarantine(b.ctx, c.FileID, outcome.EmptyFile, "again"); err != nil || changed {
			t.Fatalf("a second Quarantine says it changed the file: %v, %v", changed, err)
		}
		page, err := l.ReceivedFiles(b.ctx, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 2 || page[0].ID != a.FileID || page[0].Brand != "acme" || page[1].ID != g.FileID || page[1].Brand != "globex" {
			t.Fatalf("first page: %+v", page)
		}
		rest, err := l.ReceivedFiles(b.ctx, page[1].ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != 1 || rest[0].ID != c.FileID || rest[0].Status != outcome.Quarantined || rest[0].Reason != "no header row" ||
			rest[0].Source != "test" || rest[0].Name != "x.csv" {
			t.Errorf("second page: %+v", rest)
		}
	})

	t.Run("AFileReceivedButNeverFinishedIsPickedUpAgain", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		first := receive(b, l, "acme", "crashed before apply")
		again := receive(b, l, "acme", "crashed before apply")
		if again.FileID != first.FileID || again.Status != outcome.Received {
			t.Errorf("got %+v, want file %d again", again, first.FileID)
		}
	})

	t.Run("TheOriginalBytesAreKept", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		body := strings.Repeat("ActionId,Reason\n1,RETURNED\n", 100_000) // several chunks
		r := receive(b, l, "acme", body)
		var got bytes.Buffer
		if err := l.FileBytes(b.ctx, r.FileID, &got); err != nil {
			t.Fatal(err)
		}
		if got.String() != body {
			t.Errorf("kept %d bytes, received %d", got.Len(), len(body))
		}
	})

	t.Run("ApplyingAFileTwiceAppliesItOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		file := receive(b, l, "acme", "one file").FileID
		for range 2 {
			u := modify(1, "10")
			u.Line = 2
			sum, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: file, Brand: "acme", Actor: "t"}, iter([]processors.ActionUpdate{u}))
			if err != nil || sum.Status != outcome.Completed || sum.Applied != 1 {
				t.Fatalf("summary %+v, %v", sum, err)
			}
		}
		if got := b.action(l, 1).Mods; got != 1 {
			t.Errorf("modified %d times", got)
		}
	})
}

func TestLedgerEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	b.importActions(l, "acme", sale(1, "100"))
	for _, sql := range []string{
		"UPDATE ledger_events SET new_amount = 0",
		"DELETE FROM ledger_events",
		"TRUNCATE ledger_events CASCADE",
	} {
		if _, err := l.pool.Exec(b.ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: got %v, want a refusal", sql, err)
		}
	}
	if n := b.eventCount(l, 1); n != 1 {
		t.Errorf("%d events left, want 1", n)
	}
}

func TestImportActions(t *testing.T) {
	t.Parallel()

	t.Run("PayoutComesFromTheContractWhenBlank", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		given := sale(2, "100")
		given.Payout, given.HasPayout = amt("3.33"), true
		b.importActions(l, "acme", sale(1, "99.99"), given,
			processors.ActionRecord{ActionID: 3, TrackerID: 1002, Oid: "L", Amount: amt("0")})
		wantAction(t, b.action(l, 1), "PENDING", "99.99", "8.50") // 8.49915 rounds half up
		wantAction(t, b.action(l, 2), "PENDING", "100.00", "3.33")
		wantAction(t, b.action(l, 3), "PENDING", "0.00", "4.00")
	})

	t.Run("LockAndPayoutDatesAreCalendarDaysInTheBrandsTimezone", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		ny, _ := time.LoadLocation("America/New_York")
		a := sale(1, "10")
		a.EventDate = time.Date(2026, 10, 20, 9, 30, 0, 0, ny) // EDT; 30 days later is EST
		b.importActions(l, "acme", a)
		var lock, pay time.Time
		if err := l.pool.QueryRow(b.ctx, "SELECT lock_date, payout_date FROM actions WHERE id = 1").Scan(&lock, &pay); err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2026, 11, 19, 9, 30, 0, 0, ny); !lock.Equal(want) {
			t.Errorf("lock date %s, want %s", lock.In(ny), want)
		}
		if want := time.Date(2026, 12, 4, 9, 30, 0, 0, ny); !pay.Equal(want) {
			t.Errorf("payout date %s, want %s", pay.In(ny), want)
		}
	})

	t.Run("OpenEndedLockingLeavesNoLockDate", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "globex", processors.ActionRecord{ActionID: 1, TrackerID: 2001, Oid: "G", Amount: amt("10"), Currency: "EUR"})
		var lock *time.Time
		l.pool.QueryRow(b.ctx, "SELECT lock_date FROM actions WHERE id = 1").Scan(&lock)
		if lock != nil {
			t.Errorf("lock date %s under open-ended locking", lock)
		}
	})

	t.Run("BadRowsAreRejectedWithACode", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "globex", processors.ActionRecord{ActionID: 9, TrackerID: 2001, Oid: "G", Amount: amt("10"), Currency: "EUR"})
		b.importActions(l, "acme", sale(1, "10"))
		unknown, euro := sale(2, "10"), sale(3, "10")
		unknown.TrackerID, euro.Currency = 4242, "EUR"
		sum := b.importActions(l, "acme", unknown, euro, sale(1, "10"), sale(9, "10"), sale(4, "10"), sale(4, "11"))
		out := b.outcomes(l, sum.FileID)
		wantOutcome(t, out[2], outcome.Rejected, outcome.UnknownTracker)
		wantOutcome(t, out[3], outcome.Rejected, outcome.CurrencyMismatch)
		wantOutcome(t, out[4], outcome.DuplicateRow, outcome.ActionExists)
		wantOutcome(t, out[5], outcome.Rejected, outcome.ActionExists)
		wantOutcome(t, out[6], outcome.Applied, "")
		wantOutcome(t, out[7], outcome.DuplicateRow, outcome.ActionExists)
		if out[5].ActionID != 0 || strings.Contains(out[5].Message, "globex") {
			t.Errorf("another brand's action leaks: %+v", out[5])
		}
		wantAction(t, b.action(l, 4), "PENDING", "10.00", "0.85")
	})

	t.Run("IdsInTheRangeOfTheActionsTheLedgerCreatesAreRefused", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		sum := b.importActions(l, "acme", sale(899999999999999, "10"), sale(900000000000000, "10"),
			sale(999999999999999, "10"), sale(1000000000000000, "10"), sale(4611686018427387904, "10"))
		out := b.outcomes(l, sum.FileID)
		wantOutcome(t, out[2], outcome.Applied, "")
		wantOutcome(t, out[3], outcome.Rejected, outcome.InvalidActionID)
		wantOutcome(t, out[4], outcome.Rejected, outcome.InvalidActionID)
		wantOutcome(t, out[5], outcome.Applied, "")
		wantOutcome(t, out[6], outcome.Applied, "")
		if !strings.Contains(out[3].Message, "900000000000000 to 999999999999999") {
			t.Errorf("the message does not name the range: %q", out[3].Message)
		}
	})

	t.Run("AReversedActionKeepsWhatARestoreBringsBack", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		r := sale(1, "100")
		r.State = "REVERSED"
		b.importActions(l, "acme", r)
		wantAction(t, b.action(l, 1), "REVERSED", "0.00", "0.00")
		b.apply(l, "acme", approve(1))
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
	})
}

func TestAnActionChangedUnderTheApplyIsRetriedNotSkipped(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))

	// Another writer that does not take the brand's lock holds action 1.
	other, err := l.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(b.ctx)
	if _, err := other.Exec(b.ctx, "UPDATE actions SET customer_status = 'NEW' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	file := b.receive(l, "acme")
	rows := []processors.ActionUpdate{modify(1, "50"), modify(2, "50")}
	rows[0].Line, rows[1].Line = 2, 3
	done := make(chan error, 1)
	go func() {
		_, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: file, Brand: "acme", Actor: "t"}, iter(rows))
		done <- err
	}()
	// Once the apply waits for action 1's row lock, the other writer commits: the row moves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		l.pool.QueryRow(b.ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%WITH cur AS%'`).Scan(&waiting)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the apply never waited for the other writer's row lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := other.Commit(b.ctx); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, ErrTransient) {
		t.Fatalf("got %v, want a transient failure to retry", err)
	}
	wantAction(t, b.action(l, 2), "PENDING", "100.00", "8.50") // nothing of the file applied

	sum, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: file, Brand: "acme", Actor: "t"}, iter(rows))
	if err != nil || sum.Applied != 2 {
		t.Fatalf("retry: %+v, %v", sum, err)
	}
	wantAction(t, b.action(l, 1), "PENDING", "50.00", "4.25")
	wantAction(t, b.action(l, 2), "PENDING", "50.00", "4.25")
}
