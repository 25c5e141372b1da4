package ledger

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// inquiry is a partner's UNTRACKED claim on an acme sale of 100.00, ordered at order
// and submitted two days later.
func inquiry(id string, partner int64, oid string, order time.Time) processors.Inquiry {
	return processors.Inquiry{InquiryID: id, PartnerID: partner, Oid: oid, TrackerID: 1001,
		TransactionDate: order, SaleAmount: amt("100.00"), HasSaleAmount: true,
		Type: processors.InquiryUntracked, SubmittedAt: order.Add(48 * time.Hour)}
}

func valid(id string) processors.InquiryResolution {
	return processors.InquiryResolution{InquiryID: id, Status: processors.ResolutionValid}
}

func declined(id, reason string) processors.InquiryResolution {
	return processors.InquiryResolution{InquiryID: id, Status: processors.ResolutionDeclined, Reason: reason}
}

// importInquiries loads submissions (lines numbered from 2) with the clock at at.
func (b *testBundle) importInquiries(l *Ledger, brand string, at time.Time, rows ...processors.Inquiry) (Summary, map[int]outcome.Row) {
	b.t.Helper()
	for i := range rows {
		rows[i].Line = i + 2
	}
	sum, err := l.ImportInquiries(b.ctx, ApplyParams{FileID: b.receive(l, brand), Brand: brand, Actor: "test", At: at}, iter(rows))
	if err != nil {
		b.t.Fatal(err)
	}
	return sum, b.outcomes(l, sum.FileID)
}

// resolve applies a resolution file (lines numbered from 2) with the clock at at.
func (b *testBundle) resolve(l *Ledger, brand string, at time.Time, rows ...processors.InquiryResolution) (Summary, map[int]outcome.Row) {
	b.t.Helper()
	for i := range rows {
		rows[i].Line = i + 2
	}
	sum, err := l.ApplyInquiryResolutions(b.ctx, ApplyParams{FileID: b.receive(l, brand), Brand: brand, Actor: "test", At: at}, iter(rows))
	if err != nil {
		b.t.Fatal(err)
	}
	return sum, b.outcomes(l, sum.FileID)
}

type inquiryState struct {
	Status, Reason, By string
	ActionID           int64
}

func (b *testBundle) inquiry(l *Ledger, id string) inquiryState {
	b.t.Helper()
	var s inquiryState
	err := l.pool.QueryRow(b.ctx, `SELECT status, coalesce(resolution_reason, ''), coalesce(resolved_by, ''), coalesce(action_id, 0)
		FROM inquiries WHERE inquiry_id = $1`, id).Scan(&s.Status, &s.Reason, &s.By, &s.ActionID)
	if err != nil {
		b.t.Fatalf("inquiry %s: %v", id, err)
	}
	return s
}

func wantCode(t *testing.T, got outcome.Row, o outcome.Outcome, code outcome.Code, inMessage string) {
	t.Helper()
	wantOutcome(t, got, o, code)
	if !strings.Contains(got.Message, inMessage) {
		t.Errorf("line %d: message %q does not say %q", got.Line, got.Message, inMessage)
	}
}

func TestImportInquiries(t *testing.T) {
	t.Parallel()
	order := time.Date(2026, 9, 1, 12, 0, 0, 0, newYork)
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, newYork)

	t.Run("AcceptedSubmissionsBecomeNewInquiries", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		sum, got := b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order), inquiry("Q-2", 78, "A-1", order))
		if sum.Applied != 2 || sum.Rows != 2 {
			t.Fatalf("summary %+v", sum)
		}
		wantCode(t, got[2], outcome.Applied, "", "Inquiry Q-1 recorded as NEW")
		if s := b.inquiry(l, "Q-2"); s.Status != "NEW" || s.ActionID != 0 {
			t.Errorf("Q-2 is %+v", s)
		}
	})

	t.Run("ABrandThatDoesNotAcceptInquiriesRefusesThem", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		q := inquiry("G-1", 77, "G-1", order)
		q.TrackerID = 2001
		sum, got := b.importInquiries(l, "globex", now, q)
		wantCode(t, got[2], outcome.Rejected, outcome.InquiriesNotAccepted, "Globex does not accept action inquiries")
		if sum.Applied != 0 {
			t.Errorf("summary %+v", sum)
		}
	})

	t.Run("TheWindowRunsFrom24HoursTo3MonthsAfterTheOrder", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		// Ordered on Jan 31: three months later is Apr 30 (the month end), not May 1.
		jan31 := time.Date(2026, 1, 31, 10, 0, 0, 0, newYork)
		at := func(q processors.Inquiry, sub time.Time) processors.Inquiry { q.SubmittedAt = sub; return q }
		_, got := b.importInquiries(l, "acme", time.Date(2026, 6, 1, 0, 0, 0, 0, newYork),
			at(inquiry("early", 77, "W-1", jan31), jan31.Add(23*time.Hour+59*time.Minute)),
			at(inquiry("opens", 78, "W-1", jan31), jan31.Add(24*time.Hour)),
			at(inquiry("closes", 79, "W-1", jan31), time.Date(2026, 4, 30, 10, 0, 0, 0, newYork)),
			at(inquiry("late", 80, "W-1", jan31), time.Date(2026, 4, 30, 10, 1, 0, 0, newYork)),
		)
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryTooEarly, "open at 2026-02-01 10:00, 24 hours after the order date")
		wantOutcome(t, got[3], outcome.Applied, "")
		wantOutcome(t, got[4], outcome.Applied, "")
		wantCode(t, got[5], outcome.Rejected, outcome.InquiryTooLate, "closed at 2026-04-30 10:00, 3 months after the order date")
	})

	t.Run("The24HoursFollowTheBrandsClockAcrossTheDSTChange", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		// New York springs forward on 2026-03-08: from noon on the 7th, 24 hours on
		// the wall clock end at noon on the 8th, 23 hours later.
		order := time.Date(2026, 3, 7, 12, 0, 0, 0, newYork)
		early, ok := inquiry("early", 77, "D-1", order), inquiry("ok", 78, "D-1", order)
		early.SubmittedAt = time.Date(2026, 3, 8, 11, 59, 0, 0, newYork)
		ok.SubmittedAt = time.Date(2026, 3, 8, 12, 0, 0, 0, newYork)
		if d := ok.SubmittedAt.Sub(order); d != 23*time.Hour {
			t.Fatalf("the test's premise: %s between the two", d)
		}
		_, got := b.importInquiries(l, "acme", now, early, ok)
		wantOutcome(t, got[2], outcome.Rejected, outcome.InquiryTooEarly)
		wantOutcome(t, got[3], outcome.Applied, "")
	})

	t.Run("APartnerHasOneOpenInquiryPerOrder", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		_, got := b.importInquiries(l, "acme", now,
			inquiry("Q-2", 77, "A-1", order), // Q-1 is open
			inquiry("Q-3", 77, "A-2", order),
			inquiry("Q-4", 77, "A-2", order), // Q-3 on line 3
			inquiry("Q-5", 78, "A-1", order), // another partner may
		)
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryAlreadyOpen, "open inquiry (Q-1) for order A-1")
		wantOutcome(t, got[3], outcome.Applied, "")
		wantCode(t, got[4], outcome.Rejected, outcome.InquiryAlreadyOpen, "on line 3")
		wantOutcome(t, got[5], outcome.Applied, "")

		// Once Q-1 is declined, the partner may ask again.
		b.resolve(l, "acme", now, declined("Q-1", processors.DeclineReasons[5]))
		_, got = b.importInquiries(l, "acme", now, inquiry("Q-6", 77, "A-1", order))
		wantOutcome(t, got[2], outcome.Applied, "")
	})

	t.Run("AnInquiryIdIsTakenOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		_, got := b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order),
			inquiry("Q-2", 78, "A-9", order), inquiry("Q-2", 79, "A-8", order))
		wantCode(t, got[2], outcome.DuplicateRow, outcome.InquiryExists, "already in the ledger")
		wantOutcome(t, got[3], outcome.Applied, "")
		wantCode(t, got[4], outcome.DuplicateRow, outcome.InquiryExists, "already appears on line 3")
	})

	t.Run("TrackerCurrencyAndDatesAreChecked", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		tracker, currency, future, submittedLater := inquiry("Q-1", 77, "A-1", order), inquiry("Q-2", 77, "A-2", order),
			inquiry("Q-3", 77, "A-3", now.Add(time.Hour)), inquiry("Q-4", 77, "A-4", order)
		tracker.TrackerID = 2001
		currency.Currency = "EUR"
		submittedLater.SubmittedAt = now.Add(time.Minute)
		bad := inquiry("Q-5", 77, "A-5", order)
		bad.Err = &processors.RowError{Code: outcome.InvalidInquiryType, Message: "Type is empty"}
		_, got := b.importInquiries(l, "acme", now, tracker, currency, future, submittedLater, bad)
		wantCode(t, got[2], outcome.Rejected, outcome.UnknownTracker, "2001")
		wantCode(t, got[3], outcome.Rejected, outcome.CurrencyMismatch, "EUR")
		wantCode(t, got[4], outcome.Rejected, outcome.FutureDate, "Transaction Date")
		wantCode(t, got[5], outcome.Rejected, outcome.FutureDate, "Submission Date")
		wantCode(t, got[6], outcome.Rejected, outcome.InvalidInquiryType, "Type is empty")
	})
}

func TestApplyInquiryResolutions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, newYork)
	recent := time.Date(2026, 11, 10, 12, 0, 0, 0, newYork) // locks Dec 10, pays Dec 25

	t.Run("TheIdOfACreatedActionSurvivesASpreadsheet", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent))
		b.resolve(l, "acme", now, valid("Q-1"))
		id := b.inquiry(l, "Q-1").ActionID
		// A spreadsheet keeps 15 significant digits of a number: the id comes back
		// from an export opened and saved in Excel as it was.
		kept, err := strconv.ParseInt(strconv.FormatFloat(float64(id), 'f', -1, 64), 10, 64)
		if err != nil || kept != id || len(strconv.FormatInt(id, 10)) > 15 {
			t.Fatalf("action id %d comes back from a spreadsheet as %d (%v)", id, kept, err)
		}
		if rounded, _ := strconv.ParseFloat(strconv.FormatFloat(float64(id), 'g', 15, 64), 64); int64(rounded) != id {
			t.Fatalf("action id %d has more than 15 significant digits", id)
		}
	})

	t.Run("ValidCreatesAPendingActionUnderTheContract", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent))
		sum, got := b.resolve(l, "acme", now, valid("Q-1"))
		if sum.Applied != 1 || sum.Status != outcome.Completed {
			t.Fatalf("summary %+v", sum)
		}
		q := b.inquiry(l, "Q-1")
		if q.Status != "VALID" || q.ActionID < 900000000000000 || q.ActionID > 999999999999999 || q.By != "test" {
			t.Fatalf("inquiry %+v (actions the ledger creates are numbered from 900000000000000)", q)
		}
		wantOutcome(t, got[2], outcome.Applied, "")
		if got[2].ActionID != q.ActionID || got[2].NewAmount == nil || got[2].NewAmount.String() != "100.00" ||
			got[2].NewPayout.String() != "8.50" {
			t.Errorf("outcome %+v", got[2])
		}
		wantAction(t, b.action(l, q.ActionID), "PENDING", "100.00", "8.50")
		lock, payout := b.dates(l, q.ActionID)
		wantTime(t, "lock date", lock, time.Date(2026, 12, 10, 12, 0, 0, 0, newYork))
		wantTime(t, "payout date", payout, time.Date(2026, 12, 25, 12, 0, 0, 0, newYork))
		var partner int64
		var oid string
		if err := l.pool.QueryRow(b.ctx, "SELECT partner_id, oid FROM actions WHERE id = $1", q.ActionID).Scan(&partner, &oid); err != nil {
			t.Fatal(err)
		}
		if partner != 77 || oid != "A-1" {
			t.Errorf("the action is partner %d order %s, want the inquiry's 77 A-1", partner, oid)
		}
		if k := b.kinds(l, q.ActionID); fmt.Sprint(k) != "[CREATE]" {
			t.Errorf("events %v", k)
		}
	})

	t.Run("TheRowsValuesWinOverTheInquirysAndFinalPayoutOverTheContract", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent), inquiry("Q-2", 77, "A-2", recent))
		r1 := valid("Q-1")
		r1.SaleAmount, r1.HasSaleAmount = amt("40.00"), true
		r1.TransactionDate = time.Date(2026, 11, 12, 8, 0, 0, 0, newYork)
		r2 := valid("Q-2")
		r2.TrackerID = 1002 // a lead: fixed payout
		r3 := valid("Q-3")
		_, got := b.resolve(l, "acme", now, r1, r2, r3)
		a1 := b.action(l, b.inquiry(l, "Q-1").ActionID)
		wantAction(t, a1, "PENDING", "40.00", "3.40")
		lock, _ := b.dates(l, b.inquiry(l, "Q-1").ActionID)
		wantTime(t, "lock date", lock, time.Date(2026, 12, 12, 8, 0, 0, 0, newYork))
		wantAction(t, b.action(l, b.inquiry(l, "Q-2").ActionID), "PENDING", "100.00", "4.00")
		wantCode(t, got[4], outcome.Rejected, outcome.InquiryNotFound, "No inquiry Q-3")

		b.importInquiries(l, "acme", now, inquiry("Q-4", 78, "A-4", recent))
		r4 := valid("Q-4")
		r4.FinalPayout, r4.HasFinalPayout = amt("12.34"), true
		b.resolve(l, "acme", now, r4)
		wantAction(t, b.action(l, b.inquiry(l, "Q-4").ActionID), "PENDING", "100.00", "12.34")
	})

	t.Run("APastLockDateLocksAtOnceAndAPastPayoutDatePaysAtOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.deposit(l, "acme", "10.00")
		lockedOnly := time.Date(2026, 10, 15, 12, 0, 0, 0, newYork) // locks Nov 14, pays Nov 29
		paid := time.Date(2026, 10, 1, 12, 0, 0, 0, newYork)        // locked Oct 31, paid Nov 15
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", lockedOnly), inquiry("Q-2", 77, "A-2", paid))
		b.resolve(l, "acme", now, valid("Q-1"), valid("Q-2"))
		a1, a2 := b.inquiry(l, "Q-1").ActionID, b.inquiry(l, "Q-2").ActionID
		wantState(t, b.action(l, a1), "LOCKED")
		wantState(t, b.action(l, a2), "PAID")
		if k := b.kinds(l, a2); fmt.Sprint(k) != "[CREATE LOCK PAY]" {
			t.Errorf("events %v", k)
		}
		if got := b.balance(l, "acme"); got != "1.50" {
			t.Errorf("balance %s, want 10.00 - 8.50", got)
		}
		if b.delayed(l, a2) {
			t.Error("a covered payout is flagged delayed")
		}
		b.checkBalances(l)
		b.checkTransitions(l)
	})

	t.Run("APayoutTheBalanceCannotCoverIsPaidDelayedAndTheBalanceGoesNegative", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", time.Date(2026, 9, 30, 12, 0, 0, 0, newYork)))
		b.resolve(l, "acme", now, valid("Q-1"))
		a := b.inquiry(l, "Q-1").ActionID
		wantState(t, b.action(l, a), "PAID")
		if !b.delayed(l, a) || b.balance(l, "acme") != "-8.50" {
			t.Errorf("delayed %v, balance %s", b.delayed(l, a), b.balance(l, "acme"))
		}
		if res := b.deposit(l, "acme", "8.50"); res.Released != 1 {
			t.Errorf("deposit released %d", res.Released)
		}
		b.checkBalances(l)
	})

	t.Run("OnlyTheNewActionsAreSettledNotTheRestOfTheBrand", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "50.00", time.Date(2026, 9, 1, 12, 0, 0, 0, newYork))) // long due
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", time.Date(2026, 9, 30, 12, 0, 0, 0, newYork)))
		b.resolve(l, "acme", now, valid("Q-1"))
		wantState(t, b.action(l, 1), "PENDING")
	})

	t.Run("UnderOpenEndedLockingTheActionStaysPendingUntilApproved", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 89, "A-1", time.Date(2026, 9, 1, 12, 0, 0, 0, newYork)))
		b.resolve(l, "acme", now, valid("Q-1"))
		a := b.inquiry(l, "Q-1").ActionID
		wantState(t, b.action(l, a), "PENDING")
		b.lifecycle(l, now.Add(300*24*time.Hour))
		wantState(t, b.action(l, a), "PENDING")
		b.apply(l, "acme", approve(a))
		b.lifecycle(l, now.Add(time.Hour))
		wantState(t, b.action(l, a), "LOCKED")
	})

	t.Run("APartnersOwnContractDecidesPayoutAndDates", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 88, "A-1", recent))
		b.resolve(l, "acme", now, valid("Q-1"))
		a := b.inquiry(l, "Q-1").ActionID
		wantAction(t, b.action(l, a), "PENDING", "100.00", "12.00")
		lock, payout := b.dates(l, a)
		wantTime(t, "lock date", lock, time.Date(2026, 11, 20, 12, 0, 0, 0, newYork))
		wantTime(t, "payout date", payout, time.Date(2026, 11, 25, 12, 0, 0, 0, newYork))
	})

	t.Run("LockAndPayoutDatesCountCalendarDaysAcrossTheDSTChange", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		// Ordered before New York falls back (Nov 1); locks 30 calendar days later at the same wall time.
		order := time.Date(2026, 10, 20, 12, 0, 0, 0, newYork)
		b.importInquiries(l, "acme", order.Add(72*time.Hour), inquiry("Q-1", 77, "A-1", order))
		b.resolve(l, "acme", order.Add(72*time.Hour), valid("Q-1"))
		lock, _ := b.dates(l, b.inquiry(l, "Q-1").ActionID)
		wantTime(t, "lock date", lock, time.Date(2026, 11, 19, 12, 0, 0, 0, newYork))
		if d := lock.Sub(order); d != 30*24*time.Hour+time.Hour {
			t.Errorf("lock date %s after the order, want 30 days and the hour New York fell back", d)
		}
	})

	t.Run("DeclinedAndIncomplete", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent), inquiry("Q-2", 77, "A-2", recent))
		incomplete := processors.InquiryResolution{InquiryID: "Q-2", Status: processors.ResolutionIncomplete}
		_, got := b.resolve(l, "acme", now, declined("Q-1", processors.DeclineReasons[0]), incomplete)
		wantCode(t, got[2], outcome.Applied, "", "declined: This transaction has been tracked successfully")
		wantCode(t, got[3], outcome.Applied, "", "INCOMPLETE")
		if q := b.inquiry(l, "Q-1"); q.Status != "DECLINED" || q.Reason != processors.DeclineReasons[0] {
			t.Errorf("Q-1 %+v", q)
		}
		if q := b.inquiry(l, "Q-2"); q.Status != "INCOMPLETE" {
			t.Errorf("Q-2 %+v", q)
		}
		// An INCOMPLETE inquiry can be resolved later; a declined one cannot.
		_, got = b.resolve(l, "acme", now, valid("Q-2"), valid("Q-1"))
		wantOutcome(t, got[2], outcome.Applied, "")
		wantCode(t, got[3], outcome.Rejected, outcome.InquiryAlreadyResolved, "already DECLINED")
		_, got = b.resolve(l, "acme", now, declined("Q-2", processors.DeclineReasons[1]))
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryAlreadyResolved, "already VALID")
		if n := b.totalEvents(l); n != 1 {
			t.Errorf("%d events; only the VALID resolution writes one", n)
		}
	})

	t.Run("TheFirstRowForAnInquiryWins", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent))
		_, got := b.resolve(l, "acme", now, declined("Q-1", processors.DeclineReasons[4]), valid("Q-1"))
		wantCode(t, got[3], outcome.DuplicateRow, outcome.DuplicateOperation, "line 2")
		if q := b.inquiry(l, "Q-1"); q.Status != "DECLINED" {
			t.Errorf("Q-1 %+v", q)
		}
	})

	t.Run("AnotherBrandsInquiryIsNotFound", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent))
		_, got := b.resolve(l, "globex", now, declined("Q-1", processors.DeclineReasons[0]))
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryNotFound, "No inquiry Q-1 in this program")
		if q := b.inquiry(l, "Q-1"); q.Status != "NEW" {
			t.Errorf("globex's file changed acme's inquiry: %+v", q)
		}
	})

	t.Run("AValidResolutionNeedsATrackerADateNotInTheFutureAndAnAmountForASale", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		noTracker, noAmount, future, foreign := inquiry("Q-1", 77, "A-1", recent), inquiry("Q-2", 77, "A-2", recent),
			inquiry("Q-3", 77, "A-3", recent), inquiry("Q-4", 77, "A-4", recent)
		noTracker.TrackerID = 0
		noAmount.HasSaleAmount = false
		b.importInquiries(l, "acme", now, noTracker, noAmount, future, foreign)
		r3, r4 := valid("Q-3"), valid("Q-4")
		r3.TransactionDate = now.Add(time.Minute)
		r4.TrackerID = 2001
		r5 := valid("Q-2")
		r5.TrackerID = 1002 // a lead needs no amount
		_, got := b.resolve(l, "acme", now, valid("Q-1"), valid("Q-2"), r3, r4)
		wantOutcome(t, got[2], outcome.Rejected, outcome.ActionTrackerRequired)
		wantOutcome(t, got[3], outcome.Rejected, outcome.AmountRequired)
		wantCode(t, got[4], outcome.Rejected, outcome.FutureDate, "in the future")
		wantOutcome(t, got[5], outcome.Rejected, outcome.UnknownTracker)
		_, got = b.resolve(l, "acme", now, r5)
		wantOutcome(t, got[2], outcome.Applied, "")
		wantAction(t, b.action(l, b.inquiry(l, "Q-2").ActionID), "PENDING", "0.00", "4.00")
	})

	t.Run("ASaleAmountOverTheLimitIsNamedWhereItCameFrom", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		big := inquiry("Q-2", 77, "A-2", recent)
		big.SaleAmount = amt("6000000.00")
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", recent), big)
		inFile := valid("Q-1")
		inFile.SaleAmount, inFile.HasSaleAmount = amt("5000000.01"), true
		_, got := b.resolve(l, "acme", now, inFile, valid("Q-2"))
		wantCode(t, got[2], outcome.Rejected, outcome.SaleAmountLimit, "Sale Amount 5000000.01 is over the limit")
		if strings.Contains(got[2].Message, "inquiry") {
			t.Errorf("the row's own amount is blamed on the inquiry: %q", got[2].Message)
		}
		wantCode(t, got[3], outcome.Rejected, outcome.SaleAmountLimit, "The inquiry's Sale Amount 6000000.00 is over the limit")
	})
}

func TestAutoResolveInquiries(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, newYork)
	order := time.Date(2026, 11, 10, 12, 0, 0, 0, newYork)
	l, b := setup(t)
	tracked := saleOn(1, "10.00", order)
	tracked.Oid, tracked.PartnerID = "A-1", 77
	other := saleOn(2, "10.00", order)
	other.Oid, other.PartnerID = "A-2", 78
	reversed := saleOn(3, "10.00", order)
	reversed.Oid, reversed.PartnerID, reversed.State = "A-3", 77, "REVERSED"
	b.importActions(l, "acme", tracked, other, reversed)
	incorrect := inquiry("Q-4", 79, "A-1", order)
	incorrect.Type = processors.InquiryIncorrect
	b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order), inquiry("Q-2", 77, "A-2", order),
		inquiry("Q-3", 77, "A-3", order), incorrect, inquiry("Q-5", 77, "A-5", order))

	res, err := l.AutoResolveInquiries(b.ctx, "acme", now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Tracked != 1 || res.Other != 1 {
		t.Errorf("result %+v", res)
	}
	for id, want := range map[string]inquiryState{
		"Q-1": {Status: "DECLINED", Reason: processors.ReasonTrackedSuccessfully, By: "auto-resolve"},
		"Q-2": {Status: "DECLINED", Reason: processors.ReasonOtherChannel, By: "auto-resolve"},
		"Q-3": {Status: "NEW"}, // only a reversed action: not tracked
		"Q-4": {Status: "NEW"}, // INCORRECT: about a tracked order by definition; the brand judges it
		"Q-5": {Status: "NEW"}, // not tracked at all
	} {
		if got := b.inquiry(l, id); got != want {
			t.Errorf("%s is %+v, want %+v", id, got, want)
		}
	}
	if res, err := l.AutoResolveInquiries(b.ctx, "acme", now); err != nil || res.Tracked+res.Other != 0 {
		t.Errorf("a second run: %+v, %v", res, err)
	}
}

func TestPartnerContracts(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	event := time.Date(2026, 11, 1, 12, 0, 0, 0, newYork)
	own, brands := saleOn(1, "100.00", event), saleOn(2, "100.00", event)
	own.PartnerID = 88
	b.importActions(l, "acme", own, brands)
	wantAction(t, b.action(l, 1), "PENDING", "100.00", "12.00")
	wantAction(t, b.action(l, 2), "PENDING", "100.00", "8.50")
	lock, payout := b.dates(l, 1)
	wantTime(t, "partner 88's lock date", lock, time.Date(2026, 11, 11, 12, 0, 0, 0, newYork))
	wantTime(t, "partner 88's payout date", payout, time.Date(2026, 11, 16, 12, 0, 0, 0, newYork))

	b.apply(l, "acme", modify(1, "50.00"), modify(2, "50.00"))
	wantAction(t, b.action(l, 1), "PENDING", "50.00", "6.00")
	wantAction(t, b.action(l, 2), "PENDING", "50.00", "4.25")

	// Approved early, an action is paid the partner's payout delay after the lock.
	b.apply(l, "acme", approve(1))
	at := time.Date(2026, 11, 5, 9, 0, 0, 0, newYork)
	b.lifecycle(l, at)
	_, payout = b.dates(l, 1)
	wantTime(t, "payout date after an early approval", payout, at.AddDate(0, 0, 5))
}

func TestTheWindowOfADeclinedInquiry(t *testing.T) {
	t.Parallel()
	// The reversal's moment is when the ledger recorded it, so the test's
	// clock is the real one: an order 4 months ago, reversed now.
	now := time.Now().Truncate(time.Second)
	order := now.AddDate(0, -4, 0)
	declinedInquiry := func(id string, partner int64, oid string, submitted time.Time) processors.Inquiry {
		q := inquiry(id, partner, oid, order)
		q.Type, q.SubmittedAt = processors.InquiryDeclined, submitted
		return q
	}
	setupReversed := func(t *testing.T) (*Ledger, *testBundle) {
		l, b := setup(t)
		reversed, kept, others := saleOn(1, "100.00", order), saleOn(2, "100.00", order), saleOn(3, "100.00", order)
		reversed.Oid, kept.Oid, others.Oid, others.PartnerID = "A-1", "A-2", "A-3", 78
		b.importActions(l, "acme", reversed, kept, others)
		b.apply(l, "acme", reverse(1), reverse(3))
		return l, b
	}

	t.Run("InsideTheWindowFromTheReversal", func(t *testing.T) {
		t.Parallel()
		l, b := setupReversed(t)
		// Four months after the order: too late by the order date alone.
		at := now.AddDate(0, 2, 0)
		_, got := b.importInquiries(l, "acme", at, declinedInquiry("Q-1", 77, "A-1", at))
		wantCode(t, got[2], outcome.Applied, "", "recorded as NEW")
		// The same order, UNTRACKED: the window runs from the order date only.
		untracked := inquiry("Q-2", 77, "A-1", order)
		untracked.SubmittedAt = at
		_, got = b.importInquiries(l, "acme", at, untracked)
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryTooLate, "after the order date")
	})

	t.Run("OutsideTheWindowFromTheReversal", func(t *testing.T) {
		t.Parallel()
		l, b := setupReversed(t)
		at := now.AddDate(0, 3, 2)
		_, got := b.importInquiries(l, "acme", at, declinedInquiry("Q-1", 77, "A-1", at))
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryTooLate, "3 months after the reversal of the partner's action")
	})

	t.Run("NoReversedActionOfThePartnerForTheOrder", func(t *testing.T) {
		t.Parallel()
		l, b := setupReversed(t)
		at := now.Add(time.Hour)
		otherTracker := declinedInquiry("Q-4", 77, "A-1", at)
		otherTracker.TrackerID = 1002
		_, got := b.importInquiries(l, "acme", at,
			declinedInquiry("Q-1", 77, "A-2", at), // the action is not reversed
			declinedInquiry("Q-2", 77, "A-3", at), // reversed, but partner 78's
			declinedInquiry("Q-3", 77, "A-9", at), // no action at all
			otherTracker,                          // reversed, but under tracker 1001
		)
		wantCode(t, got[2], outcome.Rejected, outcome.NoReversedAction, "partner 77 has no reversed action for order A-2")
		wantOutcome(t, got[3], outcome.Rejected, outcome.NoReversedAction)
		wantOutcome(t, got[4], outcome.Rejected, outcome.NoReversedAction)
		wantCode(t, got[5], outcome.Rejected, outcome.NoReversedAction, "and Action Tracker 1002")
	})
}

func TestCompletingAnIncompleteInquiry(t *testing.T) {
	t.Parallel()
	order := time.Date(2026, 11, 2, 12, 0, 0, 0, newYork)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, newYork)
	incomplete := func(id, notes string) processors.InquiryResolution {
		return processors.InquiryResolution{InquiryID: id, Status: processors.ResolutionIncomplete, Notes: notes}
	}

	t.Run("ACompletedInquiryIsResolvedValidWithBothDecisionsInItsHistory", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		b.resolve(l, "acme", now, incomplete("Q-1", "please send the order confirmation"))

		again := inquiry("Q-1", 77, "A-1", order.Add(time.Hour))
		again.SaleAmount, again.Note = amt("120.00"), "confirmation attached"
		again.SubmittedAt = now.Add(time.Hour)
		sum, got := b.importInquiries(l, "acme", now.Add(2*time.Hour), again)
		if sum.Applied != 1 {
			t.Fatalf("the completion: %+v", sum)
		}
		wantCode(t, got[2], outcome.Applied, "", "Inquiry Q-1 completed: NEW again")
		var amount, note string
		var date time.Time
		err := l.pool.QueryRow(b.ctx, "SELECT status, sale_amount::text, note, transaction_date FROM inquiries WHERE inquiry_id = 'Q-1'").
			Scan(new(string), &amount, &note, &date)
		if err != nil {
			t.Fatal(err)
		}
		if b.inquiry(l, "Q-1").Status != "NEW" || amount != "120.00" || note != "confirmation attached" || !date.Equal(order.Add(time.Hour)) {
			t.Errorf("after the completion: %+v, amount %s, note %q, date %s", b.inquiry(l, "Q-1"), amount, note, date)
		}

		// Open again, it is not completed twice.
		_, got = b.importInquiries(l, "acme", now.Add(3*time.Hour), again)
		wantCode(t, got[2], outcome.DuplicateRow, outcome.InquiryExists, "only an INCOMPLETE inquiry can be completed")

		b.resolve(l, "acme", now.Add(4*time.Hour), valid("Q-1"))
		q := b.inquiry(l, "Q-1")
		if q.Status != "VALID" {
			t.Fatalf("Q-1 %+v", q)
		}
		wantAction(t, b.action(l, q.ActionID), "PENDING", "120.00", "10.20")
		wantHistory(t, b.history(l, "Q-1"),
			"- -> NEW by test file line 2",
			"NEW -> INCOMPLETE by test file line 2",
			"INCOMPLETE -> NEW by test file line 2",
			"NEW -> VALID by test file line 2")
		var notes string
		err = l.pool.QueryRow(b.ctx, `SELECT string_agg(coalesce(h.notes, '-'), ' | ' ORDER BY h.id)
			FROM inquiry_history h JOIN inquiries i ON i.id = h.inquiry WHERE i.inquiry_id = 'Q-1'`).Scan(&notes)
		if err != nil {
			t.Fatal(err)
		}
		if notes != "- | please send the order confirmation | confirmation attached | -" {
			t.Errorf("the history's notes: %s", notes)
		}
	})

	t.Run("OnlyTheSamePartnerOrderAndTypeCompleteIt", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		b.resolve(l, "acme", now, incomplete("Q-1", ""))
		otherPartner, otherOrder, otherType := inquiry("Q-1", 78, "A-1", order), inquiry("Q-1", 77, "A-2", order), inquiry("Q-1", 77, "A-1", order)
		otherType.Type = processors.InquiryIncorrect
		_, got := b.importInquiries(l, "acme", now, otherPartner, otherOrder, otherType)
		wantCode(t, got[2], outcome.DuplicateRow, outcome.InquiryExists, "a resubmission completes it only with its partner, Order Id and Type")
		// The first row for an Id wins: the others repeat it.
		wantCode(t, got[3], outcome.DuplicateRow, outcome.InquiryExists, "already appears on line 2")
		if q := b.inquiry(l, "Q-1"); q.Status != "INCOMPLETE" {
			t.Errorf("Q-1 is %+v", q)
		}
	})

	t.Run("TheCompletionIsJudgedByTheWindowAtTheOriginalSubmission", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order)) // submitted Nov 4
		b.resolve(l, "acme", now, incomplete("Q-1", ""))
		moved := inquiry("Q-1", 77, "A-1", time.Date(2026, 11, 3, 18, 0, 0, 0, newYork)) // less than 24 hours before Nov 4 12:00
		moved.SubmittedAt = now
		_, got := b.importInquiries(l, "acme", now, moved)
		wantCode(t, got[2], outcome.Rejected, outcome.InquiryTooEarly, "Submitted 2026-11-04 12:00")
	})

	t.Run("TheAutoApprovalDateCountsFromTheCompletion", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withRule(l, rule("30d"))
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		b.resolve(l, "acme", now, incomplete("Q-1", ""))
		if d := b.autoApprovalDate(l, "Q-1"); !d.IsZero() {
			t.Errorf("an INCOMPLETE inquiry waits on the partner, yet has an Auto Approval Date %s", d)
		}
		if res := b.autoApprove(l, now.AddDate(0, 2, 0)); res.Approved != 0 {
			t.Errorf("an INCOMPLETE inquiry was approved: %+v", res)
		}
		again := inquiry("Q-1", 77, "A-1", order)
		again.SubmittedAt = time.Date(2026, 12, 1, 10, 0, 0, 0, newYork)
		b.importInquiries(l, "acme", again.SubmittedAt, again)
		wantTime(t, "Auto Approval Date", b.autoApprovalDate(l, "Q-1"), time.Date(2026, 12, 31, 10, 0, 0, 0, newYork))
	})

	t.Run("TheHistoryIsAppendOnly", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		for _, sql := range []string{"UPDATE inquiry_history SET actor = 'x'", "DELETE FROM inquiry_history", "TRUNCATE inquiry_history"} {
			if _, err := l.pool.Exec(b.ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v, want it refused", sql, err)
			}
		}
	})
}
