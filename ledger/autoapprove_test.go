package ledger

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/processors"
)

// rule is an automatic approval rule approving UNTRACKED inquiries after the given delay.
func rule(after string) *AutoApproveRule {
	return &AutoApproveRule{After: config.MustParseDuration(after)}
}

// withRule syncs acme with r as its automatic approval rule.
func (b *testBundle) withRule(l *Ledger, r *AutoApproveRule) {
	b.t.Helper()
	b.syncBrands(l, func(acme, _ *Brand) { acme.AutoApprove = r })
}

func (b *testBundle) autoApprove(l *Ledger, at time.Time) AutoApproved {
	b.t.Helper()
	res, err := l.AutoApproveInquiries(b.ctx, "acme", at)
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// autoApprovalDate is an inquiry's stored Auto Approval Date; zero when it has none.
func (b *testBundle) autoApprovalDate(l *Ledger, id string) time.Time {
	b.t.Helper()
	var at *time.Time
	if err := l.pool.QueryRow(b.ctx, "SELECT auto_approve_at FROM inquiries WHERE inquiry_id = $1", id).Scan(&at); err != nil {
		b.t.Fatal(err)
	}
	if at == nil {
		return time.Time{}
	}
	return *at
}

// history is an inquiry's history, a change a line: "old -> new by actor [file line N]".
func (b *testBundle) history(l *Ledger, id string) []string {
	b.t.Helper()
	rows, err := l.pool.Query(b.ctx, `
		SELECT coalesce(h.old_status, '-') || ' -> ' || h.new_status || ' by ' || h.actor
			|| CASE WHEN h.file_id IS NULL THEN '' ELSE ' file line ' || h.line END
		FROM inquiry_history h JOIN inquiries i ON i.id = h.inquiry WHERE i.inquiry_id = $1 ORDER BY h.id`, id)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			b.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func wantHistory(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("history:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestAutoApproveInquiries(t *testing.T) {
	t.Parallel()
	// Ordered on Oct 10 and submitted two days later (EDT); 30 calendar days on
	// is Nov 11 at the same wall-clock time, after New York fell back on Nov 1.
	order := time.Date(2026, 10, 10, 12, 0, 0, 0, newYork)
	submitted := order.Add(48 * time.Hour)
	due := time.Date(2026, 11, 11, 12, 0, 0, 0, newYork)

	t.Run("ApprovesAfterNDaysAndNotBefore", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withRule(l, rule("30d"))
		expected := inquiry("Q-2", 77, "A-2", order)
		expected.ExpectedPayout, expected.HasExpected = amt("9.99"), true
		b.importInquiries(l, "acme", submitted, inquiry("Q-1", 77, "A-1", order), expected)
		wantTime(t, "Auto Approval Date", b.autoApprovalDate(l, "Q-1"), due)
		if d := due.Sub(submitted); d != 30*24*time.Hour+time.Hour {
			t.Fatalf("the test's premise: %s from submission to the date, want 30 days and the hour New York fell back", d)
		}

		if res := b.autoApprove(l, due.Add(-time.Second)); res.Approved != 0 {
			t.Fatalf("a second early: %+v", res)
		}
		if q := b.inquiry(l, "Q-1"); q.Status != "NEW" {
			t.Fatalf("a second early, Q-1 is %+v", q)
		}
		res := b.autoApprove(l, due)
		if res.Approved != 2 || res.Payout.String() != "18.49" || res.Locked != 2 || res.Paid != 0 {
			t.Errorf("on the date: %+v, want 2 approved (8.50 + 9.99), both locked at once (their lock date was Nov 9)", res)
		}
		q1, q2 := b.inquiry(l, "Q-1"), b.inquiry(l, "Q-2")
		if q1.Status != "VALID" || q1.By != AutoApprovalActor || q2.Status != "VALID" {
			t.Fatalf("Q-1 %+v, Q-2 %+v", q1, q2)
		}
		// The Expected Payout, else the contract's.
		wantAction(t, b.action(l, q1.ActionID), "LOCKED", "100.00", "8.50")
		wantAction(t, b.action(l, q2.ActionID), "LOCKED", "100.00", "9.99")
		wantHistory(t, b.history(l, "Q-1"), "- -> NEW by test file line 2", "NEW -> VALID by auto-approval")
		var actor string
		var file *int64
		err := l.pool.QueryRow(b.ctx, "SELECT actor, file_id FROM ledger_events WHERE action_id = $1 AND kind = 'CREATE'", q1.ActionID).Scan(&actor, &file)
		if err != nil || actor != AutoApprovalActor || file != nil {
			t.Errorf("CREATE event by %q, file %v (%v); want auto-approval and no file", actor, file, err)
		}
		var notes string
		var final string
		if err := l.pool.QueryRow(b.ctx, "SELECT resolution_notes, final_payout::text FROM inquiries WHERE inquiry_id = 'Q-2'").Scan(&notes, &final); err != nil {
			t.Fatal(err)
		}
		if notes != "Approved automatically: the brand did not resolve it within 30 days" || final != "9.99" {
			t.Errorf("Q-2's notes %q, final payout %s", notes, final)
		}
		// The inquiry keeps the date it was approved on; a second run finds nothing.
		wantTime(t, "Auto Approval Date after the approval", b.autoApprovalDate(l, "Q-1"), due)
		if res := b.autoApprove(l, due); res.Approved != 0 {
			t.Errorf("a second run: %+v", res)
		}
		b.checkBalances(l)
		b.checkTransitions(l)
	})

	t.Run("AnAutoApprovedOldOrderIsLockedAndPaidAtOnceWithANegativeBalance", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withRule(l, rule("30d"))
		old := time.Date(2026, 9, 1, 12, 0, 0, 0, newYork) // locked Oct 1, due for payout Oct 16
		b.importInquiries(l, "acme", old.Add(72*time.Hour), inquiry("Q-1", 77, "A-1", old))
		res := b.autoApprove(l, time.Date(2026, 10, 20, 9, 0, 0, 0, newYork))
		if res.Approved != 1 || res.Locked != 1 || res.Paid != 1 || res.Delayed != 1 {
			t.Errorf("%+v, want 1 approved, locked, paid and delayed", res)
		}
		a := b.inquiry(l, "Q-1").ActionID
		wantState(t, b.action(l, a), "PAID")
		if k := b.kinds(l, a); fmt.Sprint(k) != "[CREATE LOCK PAY]" {
			t.Errorf("events %v", k)
		}
		if !b.delayed(l, a) || b.balance(l, "acme") != "-8.50" {
			t.Errorf("delayed %v, balance %s; want a delayed payout and -8.50", b.delayed(l, a), b.balance(l, "acme"))
		}
		var actors string
		if err := l.pool.QueryRow(b.ctx, "SELECT string_agg(DISTINCT actor, ',') FROM ledger_events WHERE action_id = $1", a).Scan(&actors); err != nil {
			t.Fatal(err)
		}
		if actors != AutoApprovalActor {
			t.Errorf("events by %s, want auto-approval alone", actors)
		}
		b.checkBalances(l)
		b.checkTransitions(l)
	})

	t.Run("AnInquiryOverThePayoutCapWaitsForTheBrand", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		r := rule("30d")
		r.MaxPayout = "8.00"
		b.withRule(l, r)
		cheaper, small := inquiry("Q-2", 77, "A-2", order), inquiry("Q-3", 77, "A-3", order)
		cheaper.ExpectedPayout, cheaper.HasExpected = amt("5.00"), true // what the partner asks wins over the contract's 8.50
		small.SaleAmount = amt("90.00")                                 // 7.65 by the contract
		b.importInquiries(l, "acme", submitted, inquiry("Q-1", 77, "A-1", order), cheaper, small)
		if d := b.autoApprovalDate(l, "Q-1"); !d.IsZero() {
			t.Errorf("Q-1 (8.50 over the cap) has an Auto Approval Date %s", d)
		}
		res := b.autoApprove(l, due)
		if res.Approved != 2 {
			t.Errorf("%+v, want Q-2 and Q-3 approved", res)
		}
		if q := b.inquiry(l, "Q-1"); q.Status != "NEW" {
			t.Errorf("Q-1 is %+v; over the cap it waits for the brand", q)
		}
		wantAction(t, b.action(l, b.inquiry(l, "Q-2").ActionID), "LOCKED", "100.00", "5.00")
		wantAction(t, b.action(l, b.inquiry(l, "Q-3").ActionID), "LOCKED", "90.00", "7.65")
	})

	t.Run("TheMonthlyCapIsAPartnersCalendarMonthInTheBrandsTimezoneTakenInSubmissionOrder", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		r := rule("1d")
		r.MonthlyCap = "20.00"
		b.withRule(l, r)
		jan := time.Date(2027, 1, 18, 12, 0, 0, 0, newYork)
		at := func(q processors.Inquiry, hour int, expected string) processors.Inquiry {
			q.SubmittedAt = time.Date(2027, 1, 20, hour, 0, 0, 0, newYork)
			if expected != "" {
				q.ExpectedPayout, q.HasExpected = amt(expected), true
			}
			return q
		}
		b.importInquiries(l, "acme", time.Date(2027, 1, 21, 0, 0, 0, 0, newYork),
			at(inquiry("Q-1", 77, "A-1", jan), 10, ""),      // 8.50
			at(inquiry("Q-2", 77, "A-2", jan), 11, "12.00"), // 20.50 in all: over the cap
			at(inquiry("Q-3", 77, "A-3", jan), 12, "2.00"),  // would fit, but comes after Q-2
			at(inquiry("Q-4", 78, "A-4", jan), 12, "19.00"), // another partner: a cap of its own
		)
		// Jan 31 at 22:00 in New York is already Feb 1 in UTC.
		res := b.autoApprove(l, time.Date(2027, 1, 31, 22, 0, 0, 0, newYork))
		if res.Approved != 2 || res.Capped != 2 {
			t.Errorf("on Jan 31: %+v, want Q-1 and Q-4 approved, Q-2 and Q-3 capped", res)
		}
		for id, want := range map[string]string{"Q-1": "VALID", "Q-2": "NEW", "Q-3": "NEW", "Q-4": "VALID"} {
			if got := b.inquiry(l, id).Status; got != want {
				t.Errorf("on Jan 31, %s is %s, want %s", id, got, want)
			}
		}
		// Still January in New York: the cap is spent.
		if res := b.autoApprove(l, time.Date(2027, 1, 31, 23, 59, 0, 0, newYork)); res.Approved != 0 || res.Capped != 2 {
			t.Errorf("on Jan 31 at 23:59: %+v, want nothing approved", res)
		}
		// February in New York: a new month's room, taken in order of submission.
		feb := time.Date(2027, 2, 1, 0, 1, 0, 0, newYork)
		if res := b.autoApprove(l, feb); res.Approved != 2 || res.Payout.String() != "14.00" || res.Capped != 0 {
			t.Errorf("on Feb 1 at 00:01: %+v, want Q-2 and Q-3 (14.00) approved", res)
		}
		var resolved time.Time
		if err := l.pool.QueryRow(b.ctx, "SELECT resolved_at FROM inquiries WHERE inquiry_id = 'Q-3'").Scan(&resolved); err != nil {
			t.Fatal(err)
		}
		wantTime(t, "Q-3 resolved", resolved, feb)
	})

	t.Run("TheAutoApprovalDateMovesWithTheRule", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importInquiries(l, "acme", submitted, inquiry("Q-1", 77, "A-1", order), inquiry("Q-2", 78, "A-2", order))
		if d := b.autoApprovalDate(l, "Q-1"); !d.IsZero() {
			t.Fatalf("without a rule Q-1 has an Auto Approval Date %s", d)
		}
		b.withRule(l, rule("30d"))
		wantTime(t, "date once the rule is set", b.autoApprovalDate(l, "Q-1"), due)
		b.withRule(l, rule("10d"))
		wantTime(t, "date once the rule says 10d", b.autoApprovalDate(l, "Q-1"), submitted.AddDate(0, 0, 10))
		b.withRule(l, &AutoApproveRule{After: config.MustParseDuration("10d"), Types: []string{"INCORRECT"}})
		if d := b.autoApprovalDate(l, "Q-1"); !d.IsZero() {
			t.Errorf("a rule for INCORRECT inquiries dates an UNTRACKED one: %s", d)
		}
		// A partner's own rule replaces the brand's; off exempts the partner.
		b.syncBrands(l, func(acme, _ *Brand) {
			acme.AutoApprove = rule("30d")
			acme.Partners = append(acme.Partners,
				PartnerContract{Partner: 77, PayoutDelayDays: 15, LockingDays: acme.LockingDays, AutoApprove: rule("5d")},
				PartnerContract{Partner: 78, PayoutDelayDays: 15, LockingDays: acme.LockingDays, AutoApprove: &AutoApproveRule{Off: true}})
		})
		wantTime(t, "partner 77's own date", b.autoApprovalDate(l, "Q-1"), submitted.AddDate(0, 0, 5))
		if d := b.autoApprovalDate(l, "Q-2"); !d.IsZero() {
			t.Errorf("exempt partner 78's inquiry has an Auto Approval Date %s", d)
		}
		b.autoApprove(l, submitted.AddDate(0, 0, 6))
		if q1, q2 := b.inquiry(l, "Q-1"), b.inquiry(l, "Q-2"); q1.Status != "VALID" || q2.Status != "NEW" {
			t.Errorf("Q-1 %+v, Q-2 %+v; want partner 77's approved, 78's waiting", q1, q2)
		}
		// Without a rule the open inquiry loses its date; the approved one keeps it.
		b.withRule(l, nil)
		if d := b.autoApprovalDate(l, "Q-2"); !d.IsZero() {
			t.Errorf("Q-2 kept a date without a rule: %s", d)
		}
		wantTime(t, "the approved Q-1's date", b.autoApprovalDate(l, "Q-1"), submitted.AddDate(0, 0, 5))
	})

	t.Run("OnlyTheTypesTheRuleNames", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withRule(l, rule("30d"))
		incorrect := inquiry("Q-1", 77, "A-1", order)
		incorrect.Type = processors.InquiryIncorrect
		b.importInquiries(l, "acme", submitted, incorrect)
		if res := b.autoApprove(l, due.AddDate(0, 1, 0)); res.Approved != 0 || b.inquiry(l, "Q-1").Status != "NEW" {
			t.Errorf("an INCORRECT inquiry under a rule for UNTRACKED ones: %+v", res)
		}
	})

	t.Run("AnOrderTrackedMeanwhileIsNotApprovedTwice", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withRule(l, rule("30d"))
		b.importInquiries(l, "acme", submitted, inquiry("Q-1", 77, "A-1", order))
		late := saleOn(1, "100.00", order)
		late.Oid = "A-1"
		b.importActions(l, "acme", late)
		if res := b.autoApprove(l, due); res.Approved != 0 || res.Tracked != 1 {
			t.Errorf("%+v, want Q-1 left to the brand: its order is tracked", res)
		}
	})
}
