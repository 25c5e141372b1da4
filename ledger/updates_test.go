package ledger

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

func TestApplyActionUpdates(t *testing.T) {
	t.Parallel()

	t.Run("ModifyRecomputesPercentPayoutAndCountsTheModification", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100.00"))
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
		_, out := b.apply(l, "acme", modify(1, "10.01"))
		wantOutcome(t, out[2], outcome.Applied, "")
		got := b.action(l, 1)
		wantAction(t, got, "PENDING", "10.01", "0.85") // 8.5% of 10.01 = 0.85085, rounded half up
		if got.Mods != 1 {
			t.Errorf("modification count %d, want 1", got.Mods)
		}
		if r := out[2]; r.OldAmount.String() != "100.00" || r.NewAmount.String() != "10.01" ||
			r.OldPayout.String() != "8.50" || r.NewPayout.String() != "0.85" || r.ActionID != 1 {
			t.Errorf("outcome amounts %v", r)
		}
	})

	t.Run("ModifyKeepsAFixedPayout", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", processors.ActionRecord{ActionID: 2, TrackerID: 1002, Oid: "L-2", Amount: amt("50")})
		b.apply(l, "acme", modify(2, "20"))
		wantAction(t, b.action(l, 2), "PENDING", "20.00", "4.00")
	})

	t.Run("ModifyOfAnApprovedActionKeepsItApproved", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", approve(1))
		b.apply(l, "acme", modify(1, "200"))
		wantAction(t, b.action(l, 1), "APPROVED", "200.00", "17.00")
	})

	t.Run("ReverseSetsAmountAndPayoutToZero", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		_, out := b.apply(l, "acme", reverse(1))
		wantOutcome(t, out[2], outcome.Applied, "")
		wantAction(t, b.action(l, 1), "REVERSED", "0.00", "0.00")
	})

	t.Run("ApproveMovesPendingToApproved", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", approve(1))
		wantAction(t, b.action(l, 1), "APPROVED", "100.00", "8.50")
	})

	t.Run("ApproveRestoresAReversedActionToItsAmountJustBeforeTheReversal", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", modify(1, "80"))
		b.apply(l, "acme", reverse(1))
		_, out := b.apply(l, "acme", approve(1))
		wantOutcome(t, out[2], outcome.Applied, "")
		wantAction(t, b.action(l, 1), "PENDING", "80.00", "6.80")
	})

	t.Run("ApproveOfAnApprovedActionChangesNothing", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", approve(1))
		events := b.eventCount(l, 1)
		_, out := b.apply(l, "acme", approve(1))
		wantOutcome(t, out[2], outcome.Applied, "")
		if n := b.eventCount(l, 1); n != events {
			t.Errorf("an approval that changed nothing wrote %d events", n-events)
		}
	})

	t.Run("ResetRestoresTheOriginalAmountAndPayout", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", modify(1, "30"))
		b.apply(l, "acme", reset(1))
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
	})

	t.Run("ResetOfAReversedActionReturnsItToPending", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", modify(1, "30"))
		b.apply(l, "acme", reverse(1))
		b.apply(l, "acme", reset(1))
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
	})

	t.Run("LockedAndPaidActionsAreNeverChangedByAFile", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		locked, paid := sale(1, "100"), sale(2, "100")
		locked.State, paid.State = "LOCKED", "PAID"
		b.importActions(l, "acme", locked, paid)
		for _, id := range []int64{1, 2} {
			_, out := b.apply(l, "acme", modify(id, "1"), reverse(id), approve(id), reset(id))
			for line := 2; line <= 5; line++ {
				wantOutcome(t, out[line], outcome.Rejected, outcome.ActionLocked)
			}
		}
		wantAction(t, b.action(l, 1), "LOCKED", "100.00", "8.50")
		wantAction(t, b.action(l, 2), "PAID", "100.00", "8.50")
	})

	t.Run("AReversedActionCannotBeModifiedOrReversedAgain", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		b.apply(l, "acme", reverse(1))
		_, out := b.apply(l, "acme", modify(1, "5"), reverse(1))
		wantOutcome(t, out[2], outcome.Rejected, outcome.ActionReversed)
		wantOutcome(t, out[3], outcome.Rejected, outcome.ActionReversed)
	})

	t.Run("CPCActionsCannotBeReversedOrModified", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", processors.ActionRecord{ActionID: 3, TrackerID: 1003, Oid: "C-3", Amount: amt("0")})
		_, out := b.apply(l, "acme", modify(3, "5"), reverse(3))
		wantOutcome(t, out[2], outcome.Rejected, outcome.CPCNotReversible)
		wantOutcome(t, out[3], outcome.Rejected, outcome.CPCNotReversible)
		wantAction(t, b.action(l, 3), "PENDING", "0.00", "0.10")
	})

	t.Run("TheThousandthModificationIsTheLast", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))
		b.exec(l, "UPDATE actions SET modification_count = 999 WHERE id = 1")
		b.exec(l, "UPDATE actions SET modification_count = 1000 WHERE id = 2")
		_, out := b.apply(l, "acme", modify(1, "50"), modify(2, "50"))
		wantOutcome(t, out[2], outcome.Applied, "")
		wantOutcome(t, out[3], outcome.Rejected, outcome.ModLimitExceeded)
		if got := b.action(l, 1).Mods; got != 1000 {
			t.Errorf("modification count %d, want 1000", got)
		}
	})

	t.Run("ACurrencyOtherThanTheActionsIsRejected", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		m, same := modify(1, "50"), approve(1)
		m.Currency, same.Currency = "EUR", "USD"
		_, out := b.apply(l, "acme", m, same)
		wantOutcome(t, out[2], outcome.Rejected, outcome.CurrencyMismatch)
		wantOutcome(t, out[3], outcome.Applied, "")
	})

	t.Run("AmountZeroReversesAnActionWithAnAmount", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"), sale(2, "0"))
		zero1, zero2 := modify(1, "0"), modify(2, "0")
		zero1.ReverseIfZero, zero2.ReverseIfZero = true, true
		b.apply(l, "acme", zero1, zero2)
		wantAction(t, b.action(l, 1), "REVERSED", "0.00", "0.00")
		got := b.action(l, 2)
		wantAction(t, got, "PENDING", "0.00", "0.00")
		if got.Mods != 1 {
			t.Errorf("amount 0 on an action of amount 0 should be a modification; count %d", got.Mods)
		}
	})

	t.Run("CustomerStatusIsNotAllowedOnAReversal", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))
		zero, m := modify(1, "0"), modify(2, "60")
		zero.ReverseIfZero, zero.CustomerStatus, m.CustomerStatus = true, "NEW", "EXISTING"
		_, out := b.apply(l, "acme", zero, m)
		wantOutcome(t, out[2], outcome.Rejected, outcome.CustomerStatusNotAllowed)
		wantOutcome(t, out[3], outcome.Applied, "")
		var cs string
		if err := l.pool.QueryRow(b.ctx, "SELECT customer_status FROM actions WHERE id = 2").Scan(&cs); err != nil || cs != "EXISTING" {
			t.Errorf("customer status %q, %v", cs, err)
		}
	})

	t.Run("AnOidMeansTheNewestActionWithThatOidAndTracker", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		older, newer, otherTracker := sale(1, "100"), sale(2, "100"), sale(3, "100")
		older.Oid, newer.Oid, otherTracker.Oid = "ORD-9", "ORD-9", "ORD-9"
		day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		older.EventDate, newer.EventDate, otherTracker.EventDate = day, day.AddDate(0, 0, 2), day.AddDate(0, 0, 3)
		otherTracker.TrackerID = 1002
		b.importActions(l, "acme", older, newer, otherTracker)
		_, out := b.apply(l, "acme", processors.ActionUpdate{Oid: "ORD-9", TrackerID: 1001, Operation: processors.Reverse, Reason: "ITEM_RETURNED"})
		if out[2].ActionID != 2 {
			t.Errorf("Oid resolved to action %d, want the newest, 2", out[2].ActionID)
		}
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
		wantAction(t, b.action(l, 2), "REVERSED", "0.00", "0.00")
	})

	t.Run("ARowNamingAnotherBrandsActionIsNotFound", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		g := processors.ActionRecord{ActionID: 9, TrackerID: 2001, Oid: "G-9", Amount: amt("100"), Currency: "EUR"}
		b.importActions(l, "globex", g)
		byOid := processors.ActionUpdate{Oid: "G-9", TrackerID: 2001, Operation: processors.Reverse, Reason: "ITEM_RETURNED"}
		_, out := b.apply(l, "acme", reverse(9), byOid, reverse(12345))
		for line := 2; line <= 4; line++ {
			wantOutcome(t, out[line], outcome.Rejected, outcome.ActionNotFound)
			if out[line].ActionID != 0 {
				t.Errorf("line %d leaks action id %d", line, out[line].ActionID)
			}
		}
		if out[2].Message != out[4].Message[:len("No action ")]+"9 in this program" {
			t.Errorf("another brand's action and a missing one must read alike: %q vs %q", out[2].Message, out[4].Message)
		}
		var state string
		l.pool.QueryRow(b.ctx, "SELECT state FROM actions WHERE id = 9").Scan(&state)
		if state != "PENDING" {
			t.Errorf("globex's action is %s after acme's file", state)
		}
	})

	t.Run("SeveralRowsNamingAMissingActionAreEachNotFound", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		g := processors.ActionRecord{ActionID: 9, TrackerID: 2001, Oid: "G-9", Amount: amt("100"), Currency: "EUR"}
		b.importActions(l, "globex", g)
		_, out := b.apply(l, "acme", reverse(404), modify(404, "1"), reverse(9), approve(9))
		for line := 2; line <= 5; line++ {
			wantOutcome(t, out[line], outcome.Rejected, outcome.ActionNotFound)
		}
	})

	t.Run("TheFirstRowForAnActionAndOperationWins", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		_, out := b.apply(l, "acme", modify(1, "50"), modify(1, "60"))
		wantOutcome(t, out[2], outcome.Applied, "")
		wantOutcome(t, out[3], outcome.DuplicateRow, outcome.DuplicateOperation)
		wantAction(t, b.action(l, 1), "PENDING", "50.00", "4.25")
	})

	t.Run("RowsOfOneActionApplyInFileOrder", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))
		sum, out := b.apply(l, "acme", modify(1, "40"), approve(2), reverse(1), modify(2, "10"), approve(1))
		if sum.Applied != 5 {
			t.Fatalf("applied %d of 5: %v", sum.Applied, out)
		}
		// 1: modified to 40, reversed, then restored to 40 by the approval.
		wantAction(t, b.action(l, 1), "PENDING", "40.00", "3.40")
		wantAction(t, b.action(l, 2), "APPROVED", "10.00", "0.85")
		var kinds []string
		rows, _ := l.pool.Query(b.ctx, "SELECT kind FROM ledger_events WHERE action_id = 1 ORDER BY id")
		for rows.Next() {
			var k string
			rows.Scan(&k)
			kinds = append(kinds, k)
		}
		if got := fmtList(kinds); got != "CREATE MODIFY REVERSE RESTORE" {
			t.Errorf("events of action 1: %s", got)
		}
	})

	t.Run("RejectedRowsKeepTheirParserCodeAndLine", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		bad := processors.ActionUpdate{ActionID: 1, Err: &processors.RowError{Code: outcome.InvalidAmount, Message: "Amount \"x\" is not a number"}}
		sum, out := b.apply(l, "acme", bad)
		wantOutcome(t, out[2], outcome.Rejected, outcome.InvalidAmount)
		if out[2].Message != "Amount \"x\" is not a number" || sum.ByCode[outcome.InvalidAmount] != 1 {
			t.Errorf("got %+v, summary %+v", out[2], sum)
		}
		if out[2].ActionID != 0 {
			t.Errorf("a row the parser rejected names action %d in its outcome; it was never resolved", out[2].ActionID)
		}
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
	})

	t.Run("EveryRowHasExactlyOneOutcome", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))
		rows := []processors.ActionUpdate{modify(1, "5"), modify(1, "6"), reverse(404), approve(2), approve(2), reset(1),
			{Err: &processors.RowError{Code: outcome.ReasonRequired, Message: "Reason is required"}}}
		sum, out := b.apply(l, "acme", rows...)
		if sum.Rows != len(rows) || len(out) != len(rows) || sum.Applied+sum.Rejected+sum.Duplicate != len(rows) {
			t.Errorf("%d rows, summary %+v, %d outcomes", len(rows), sum, len(out))
		}
	})

	t.Run("AFileErrorMidwayAppliesNothing", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		file := b.receive(l, "acme")
		sent := false
		next := func() (processors.ActionUpdate, error) {
			if !sent {
				sent = true
				u := reverse(1)
				u.Line = 2
				return u, nil
			}
			return processors.ActionUpdate{}, &processors.FileError{Code: outcome.FieldTooLarge, Reason: "a cell on line 3 is over 64 KiB"}
		}
		_, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: file, Brand: "acme", Actor: "test"}, next)
		var fe *processors.FileError
		if !errors.As(err, &fe) || fe.Code != outcome.FieldTooLarge {
			t.Fatalf("got %v, want the file error", err)
		}
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
		if ok, err := l.Quarantine(b.ctx, file, fe.Code, fe.Reason); err != nil || !ok {
			t.Fatalf("quarantine: %v, %v", ok, err)
		}
		if ok, err := l.Quarantine(b.ctx, file, fe.Code, "again"); err != nil || ok {
			t.Errorf("a file quarantined twice: %v, %v", ok, err)
		}
		var status, reason string
		l.pool.QueryRow(b.ctx, "SELECT status, reason FROM received_files WHERE id = $1", file).Scan(&status, &reason)
		if status != "QUARANTINED" || reason != fe.Reason {
			t.Errorf("file is %s (%s)", status, reason)
		}
	})

	t.Run("ADryRunReportsOutcomesAndChangesNothing", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		var seen []outcome.Row
		inspect := func(ctx context.Context, read OutcomeReader) error {
			return read(ctx, func(r outcome.Row) error { seen = append(seen, r); return nil })
		}
		u := reverse(1)
		u.Line = 2
		sum, err := l.ApplyActionUpdates(b.ctx, ApplyParams{Brand: "acme", Actor: "test", DryRun: true, Inspect: inspect},
			iter([]processors.ActionUpdate{u}))
		if err != nil {
			t.Fatal(err)
		}
		if sum.Applied != 1 || len(seen) != 1 || seen[0].Outcome != outcome.Applied {
			t.Errorf("summary %+v, outcomes %+v", sum, seen)
		}
		wantAction(t, b.action(l, 1), "PENDING", "100.00", "8.50")
		var files int
		l.pool.QueryRow(b.ctx, "SELECT count(*) FROM received_files WHERE source = 'dry-run'").Scan(&files)
		if files != 0 || b.eventCount(l, 1) != 1 {
			t.Errorf("a dry run left %d files and %d events", files, b.eventCount(l, 1)-1)
		}
	})
}

func fmtList(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// TestRoundsFollowTheActionsNotTheRows: rows of one action apply in rounds, one
// row of each action per round; an ActionId that is none of the brand's
// actions needs no round at all. A placeholder ActionId on 3,000 rows used to
// be 3,000 rounds (minutes for a file that changes nothing).
func TestRoundsFollowTheActionsNotTheRows(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	rounds := &countingHandler{msg: "round applied"}
	l.logger = slog.New(rounds)
	b.importActions(l, "acme", sale(1, "100"), sale(2, "100"))
	var rows []processors.ActionUpdate
	for range 3000 {
		rows = append(rows, modify(424242, "5"))
	}
	rows = append(rows, modify(1, "90"), modify(2, "70"), reverse(1), approve(1))
	sum, out := b.apply(l, "acme", rows...)
	if sum.Rows != 3004 || sum.ByCode[outcome.ActionNotFound] != 3000 || sum.Applied != 4 {
		t.Fatalf("summary %+v", sum)
	}
	for line := 2; line < 3002; line++ {
		if r := out[line]; r.Code != outcome.ActionNotFound || r.Message != "No action 424242 in this program" || r.ActionID != 0 {
			t.Fatalf("line %d: %+v", line, r)
		}
	}
	wantAction(t, b.action(l, 1), "PENDING", "90.00", "7.65") // modified, reversed, restored
	wantAction(t, b.action(l, 2), "PENDING", "70.00", "5.95")
	if n := rounds.n.Load(); n != 3 {
		t.Errorf("%d rounds, want 3 (action 1 has three rows)", n)
	}
}

// countingHandler counts the log records with one message.
type countingHandler struct {
	msg string
	n   atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
