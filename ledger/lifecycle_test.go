package ledger

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

var newYork = mustLoad("America/New_York")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// lifecycle runs the lifecycle job with the clock at at and returns what it did to acme.
func (b *testBundle) lifecycle(l *Ledger, at time.Time) BrandLifecycle {
	b.t.Helper()
	sum, err := l.RunLifecycle(b.ctx, at)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, bl := range sum.Brands {
		if bl.Brand == "acme" {
			return bl
		}
	}
	b.t.Fatalf("the lifecycle did not run for acme: %+v", sum)
	return BrandLifecycle{}
}

func (b *testBundle) deposit(l *Ledger, brand, amount string) DepositResult {
	b.t.Helper()
	res, err := l.Deposit(b.ctx, brand, amt(amount), "test")
	if err != nil {
		b.t.Fatal(err)
	}
	return res
}

// balance is the brand's balance as the ledger keeps it.
func (b *testBundle) balance(l *Ledger, brand string) string {
	b.t.Helper()
	var s string
	if err := l.pool.QueryRow(b.ctx, "SELECT balance::text FROM brands WHERE slug = $1", brand).Scan(&s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *testBundle) delayed(l *Ledger, id int64) bool {
	b.t.Helper()
	var d bool
	if err := l.pool.QueryRow(b.ctx, "SELECT payout_delayed FROM actions WHERE id = $1", id).Scan(&d); err != nil {
		b.t.Fatal(err)
	}
	return d
}

// dates are an action's lock and payout dates.
func (b *testBundle) dates(l *Ledger, id int64) (lock, payout time.Time) {
	b.t.Helper()
	if err := l.pool.QueryRow(b.ctx, "SELECT lock_date, payout_date FROM actions WHERE id = $1", id).Scan(&lock, &payout); err != nil {
		b.t.Fatal(err)
	}
	return lock, payout
}

// kinds lists an action's event kinds in the order they were written.
func (b *testBundle) kinds(l *Ledger, id int64) []string {
	b.t.Helper()
	rows, err := l.pool.Query(b.ctx, "SELECT kind FROM ledger_events WHERE action_id = $1 ORDER BY id", id)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			b.t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

func (b *testBundle) totalEvents(l *Ledger) int {
	b.t.Helper()
	var n int
	if err := l.pool.QueryRow(b.ctx, "SELECT count(*) FROM ledger_events").Scan(&n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

// saleOn is an acme SALE action tracked at the given moment.
func saleOn(id int64, amount string, at time.Time) processors.ActionRecord {
	r := sale(id, amount)
	r.EventDate = at
	return r
}

// globexSale is a sale of globex, whose contract has open-ended locking.
func globexSale(id int64, amount string, at time.Time) processors.ActionRecord {
	return processors.ActionRecord{ActionID: id, TrackerID: 2001, Oid: "G-1", Amount: amt(amount),
		Currency: "EUR", EventDate: at}
}

func wantState(t *testing.T, got actionState, state string) {
	t.Helper()
	if got.State != state {
		t.Errorf("action is %s, want %s", got.State, state)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s is %s, want %s", what, got.In(newYork), want.In(newYork))
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	// acme: locking 30 days, payout 15 days after the lock, America/New_York.
	// An event at 2026-11-01 07:00 EST locks 2026-12-01 07:00 EST and pays 2026-12-16 07:00 EST.
	event := time.Date(2026, 11, 1, 7, 0, 0, 0, newYork)
	lockAt := time.Date(2026, 12, 1, 7, 0, 0, 0, newYork)
	payAt := time.Date(2026, 12, 16, 7, 0, 0, 0, newYork)

	t.Run("LocksAPendingActionOnItsLockDateNotOneDayEarly", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event))
		if got := b.lifecycle(l, lockAt.AddDate(0, 0, -1)); got.Locked != 0 {
			t.Errorf("a day early: locked %d", got.Locked)
		}
		b.lifecycle(l, lockAt.Add(-time.Second))
		wantState(t, b.action(l, 1), "PENDING")
		if got := b.lifecycle(l, lockAt); got.Locked != 1 || got.Paid != 0 {
			t.Errorf("on the lock date: %+v, want 1 locked, 0 paid", got)
		}
		wantState(t, b.action(l, 1), "LOCKED")
		lock, payout := b.dates(l, 1)
		wantTime(t, "lock date", lock, lockAt)
		wantTime(t, "payout date", payout, payAt)
		if k := b.kinds(l, 1); len(k) != 2 || k[1] != "LOCK" {
			t.Errorf("events %v, want CREATE LOCK", k)
		}
		var oldState, newState string
		var delta *string
		err := l.pool.QueryRow(b.ctx, `SELECT old_state, new_state, balance_delta::text FROM ledger_events
			WHERE action_id = 1 AND kind = 'LOCK'`).Scan(&oldState, &newState, &delta)
		if err != nil {
			t.Fatal(err)
		}
		if oldState != "PENDING" || newState != "LOCKED" || delta != nil {
			t.Errorf("LOCK event %s -> %s, balance_delta %v", oldState, newState, delta)
		}
	})

	t.Run("LocksAnApprovedActionAtOnceAndPaysItTheDelayAfterTheLock", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event))
		b.apply(l, "acme", approve(1))
		now := event.Add(50 * time.Hour) // 2026-11-03 09:00 EST
		if got := b.lifecycle(l, now); got.Locked != 1 {
			t.Errorf("locked %d, want 1", got.Locked)
		}
		wantState(t, b.action(l, 1), "LOCKED")
		lock, payout := b.dates(l, 1)
		wantTime(t, "lock date", lock, now)
		wantTime(t, "payout date", payout, time.Date(2026, 11, 18, 9, 0, 0, 0, newYork))
		b.lifecycle(l, time.Date(2026, 11, 18, 8, 59, 59, 0, newYork))
		wantState(t, b.action(l, 1), "LOCKED")
		b.lifecycle(l, time.Date(2026, 11, 18, 9, 0, 0, 0, newYork))
		wantState(t, b.action(l, 1), "PAID")
	})

	t.Run("AnApprovalAfterTheLockDateKeepsTheContractDates", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event))
		b.apply(l, "acme", approve(1))
		b.lifecycle(l, lockAt.Add(time.Hour))
		lock, payout := b.dates(l, 1)
		wantTime(t, "lock date", lock, lockAt)
		wantTime(t, "payout date", payout, payAt)
	})

	t.Run("OpenEndedLockingNeverLocksAPendingActionUntilApproved", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		berlin := mustLoad("Europe/Berlin")
		ev := time.Date(2026, 3, 1, 12, 0, 0, 0, berlin)
		b.importActions(l, "globex", globexSale(1, "100", ev), globexSale(2, "100", ev))
		b.apply(l, "globex", approve(2))
		b.lifecycle(l, ev.AddDate(1, 11, 0))
		wantState(t, b.action(l, 1), "PENDING")
		wantState(t, b.action(l, 2), "LOCKED")
		b.apply(l, "globex", approve(1))
		b.lifecycle(l, ev.AddDate(1, 11, 1))
		wantState(t, b.action(l, 1), "LOCKED")
		_, payout := b.dates(l, 1)
		wantTime(t, "payout date", payout, ev.AddDate(1, 11, 11)) // globex pays 10 days after the lock
	})

	t.Run("AnActionTrackedAsLockedUnderOpenEndedLockingIsPaidAfterThePayoutDelay", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		locked := globexSale(1, "100", time.Now().AddDate(0, -1, 0))
		locked.State = "LOCKED"
		before := time.Now()
		b.importActions(l, "globex", locked)
		lock, payout := b.dates(l, 1)
		if lock.Before(before.Add(-time.Minute)) || lock.After(time.Now()) || !payout.Equal(lock.In(mustLoad("Europe/Berlin")).AddDate(0, 0, 10)) {
			t.Fatalf("lock date %s, payout date %s: want the import's moment and 10 days later", lock, payout)
		}
		b.lifecycle(l, payout.Add(-time.Second))
		wantState(t, b.action(l, 1), "LOCKED")
		b.lifecycle(l, payout)
		wantState(t, b.action(l, 1), "PAID")
	})

	t.Run("OpenEndedLockingLocksAfter730DaysAsASafetyNet", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		berlin := mustLoad("Europe/Berlin")
		ev := time.Date(2026, 3, 1, 12, 0, 0, 0, berlin) // CET; 730 days on is 2028-02-29 12:00 CET
		net := time.Date(2028, 2, 29, 12, 0, 0, 0, berlin)
		b.importActions(l, "globex", globexSale(1, "100", ev))
		b.lifecycle(l, net.Add(-time.Second))
		wantState(t, b.action(l, 1), "PENDING")
		b.lifecycle(l, net)
		wantState(t, b.action(l, 1), "LOCKED")
		lock, payout := b.dates(l, 1)
		wantTime(t, "lock date", lock, net)
		wantTime(t, "payout date", payout, time.Date(2028, 3, 10, 12, 0, 0, 0, berlin))
	})

	t.Run("PaysOnThePayoutDateNotBeforeAndDebitsTheBalance", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.deposit(l, "acme", "100")
		b.importActions(l, "acme", saleOn(1, "100", event))
		b.lifecycle(l, lockAt)
		if got := b.lifecycle(l, payAt.Add(-time.Second)); got.Paid != 0 {
			t.Errorf("paid %d before the payout date", got.Paid)
		}
		got := b.lifecycle(l, payAt)
		if got.Paid != 1 || got.Delayed != 0 || got.Debited.String() != "8.50" || got.Balance.String() != "91.50" {
			t.Errorf("on the payout date: %+v", got)
		}
		wantState(t, b.action(l, 1), "PAID")
		if bal := b.balance(l, "acme"); bal != "91.50" {
			t.Errorf("balance %s, want 91.50", bal)
		}
		var delta string
		if err := l.pool.QueryRow(b.ctx, "SELECT balance_delta::text FROM ledger_events WHERE kind = 'PAY' AND action_id = 1").Scan(&delta); err != nil {
			t.Fatal(err)
		}
		if delta != "-8.50" {
			t.Errorf("PAY balance_delta %s, want -8.50", delta)
		}
	})

	t.Run("LocksAndPaysInOneRunWhenBothDatesHavePassed", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event))
		got := b.lifecycle(l, payAt)
		if got.Locked != 1 || got.Paid != 1 {
			t.Errorf("%+v, want 1 locked and paid", got)
		}
		if k := b.kinds(l, 1); len(k) != 3 || k[1] != "LOCK" || k[2] != "PAY" {
			t.Errorf("events %v, want CREATE LOCK PAY", k)
		}
	})

	t.Run("AnUncoveredPayoutIsBookedDelayedAndTheBalanceGoesNegative", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.deposit(l, "acme", "10")
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "100", event), saleOn(3, "100", event))
		got := b.lifecycle(l, payAt)
		if got.Paid != 3 || got.Delayed != 2 || got.Balance.String() != "-15.50" {
			t.Errorf("%+v, want 3 paid, 2 delayed, balance -15.50", got)
		}
		for id, want := range map[int64]bool{1: false, 2: true, 3: true} {
			wantState(t, b.action(l, id), "PAID")
			if d := b.delayed(l, id); d != want {
				t.Errorf("action %d: payout_delayed %v, want %v", id, d, want)
			}
		}
	})

	t.Run("AZeroPayoutIsNeverDelayed", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "100", event))
		b.apply(l, "acme", modify(2, "0"))
		b.lifecycle(l, payAt)
		if !b.delayed(l, 1) || b.delayed(l, 2) {
			t.Errorf("delayed: 1 %v, 2 %v; want true, false", b.delayed(l, 1), b.delayed(l, 2))
		}
	})

	t.Run("ASecondRunAtTheSameTimeChangesNothing", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "100", event.AddDate(0, 0, 20)))
		b.apply(l, "acme", approve(2))
		first := b.lifecycle(l, payAt)
		events, balance := b.totalEvents(l), b.balance(l, "acme")
		second := b.lifecycle(l, payAt)
		if first.Locked != 2 || second != (BrandLifecycle{Brand: "acme", Currency: "USD", Balance: first.Balance}) {
			t.Errorf("first run %+v, second %+v", first, second)
		}
		if n := b.totalEvents(l); n != events || b.balance(l, "acme") != balance {
			t.Errorf("the second run wrote %d events, balance %s -> %s", n-events, balance, b.balance(l, "acme"))
		}
	})

	t.Run("TwoRunsAtOnceLockAndPayEachActionOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		var recs []processors.ActionRecord
		for i := int64(1); i <= 300; i++ {
			recs = append(recs, saleOn(i, "100", event))
		}
		b.importActions(l, "acme", recs...)
		b.deposit(l, "acme", "1000")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = l.RunLifecycle(b.ctx, payAt) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var wrong int
		err := l.pool.QueryRow(b.ctx, `SELECT count(*) FROM (
			SELECT a.id FROM actions a LEFT JOIN ledger_events e ON e.action_id = a.id AND e.kind IN ('LOCK', 'PAY')
			GROUP BY a.id HAVING count(*) FILTER (WHERE e.kind = 'LOCK') <> 1 OR count(*) FILTER (WHERE e.kind = 'PAY') <> 1) x`).Scan(&wrong)
		if err != nil {
			t.Fatal(err)
		}
		if wrong != 0 {
			t.Errorf("%d actions without exactly one LOCK and one PAY", wrong)
		}
		// 300 × 8.50 = 2550: 117 payouts covered by 1000 (994.50), 183 delayed.
		if bal := b.balance(l, "acme"); bal != "-1550.00" {
			t.Errorf("balance %s, want -1550.00", bal)
		}
		b.checkBalances(l)
	})

	t.Run("CalendarDaysAcrossTheEndOfDaylightSavingTime", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		// 2026-10-02 12:00 EDT + 30 days = 2026-11-01 12:00 EST (17:00 UTC): the
		// clocks went back that morning, so 30 days are 30×24 h + 1 h here. Import
		// counts calendar days in the brand's timezone, and the lifecycle honours it.
		b.importActions(l, "acme", saleOn(1, "100", time.Date(2026, 10, 2, 12, 0, 0, 0, newYork)))
		lock, payout := b.dates(l, 1)
		wantTime(t, "lock date", lock, time.Date(2026, 11, 1, 17, 0, 0, 0, time.UTC))
		wantTime(t, "payout date", payout, time.Date(2026, 11, 16, 12, 0, 0, 0, newYork))
		b.lifecycle(l, time.Date(2026, 11, 1, 16, 30, 0, 0, time.UTC)) // 30×24 h later, but 11:30 EST
		wantState(t, b.action(l, 1), "PENDING")
		b.lifecycle(l, time.Date(2026, 11, 1, 12, 0, 0, 0, newYork))
		wantState(t, b.action(l, 1), "LOCKED")
	})

	t.Run("CalendarDaysAcrossMonthEndsAndTheStartOfDaylightSavingTime", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		// Jan 31 + 30 days is Mar 2; + 15 more is Mar 17, after the clocks went forward on Mar 8.
		b.importActions(l, "acme", saleOn(1, "100", time.Date(2026, 1, 31, 10, 0, 0, 0, newYork)))
		lockDay, payDay := time.Date(2026, 3, 2, 10, 0, 0, 0, newYork), time.Date(2026, 3, 17, 10, 0, 0, 0, newYork)
		b.lifecycle(l, lockDay.Add(-time.Second))
		wantState(t, b.action(l, 1), "PENDING")
		b.lifecycle(l, lockDay)
		wantState(t, b.action(l, 1), "LOCKED")
		b.lifecycle(l, payDay.Add(-time.Second))
		wantState(t, b.action(l, 1), "LOCKED")
		b.lifecycle(l, payDay)
		wantState(t, b.action(l, 1), "PAID")
		if payDay.Sub(lockDay) != 15*24*time.Hour-time.Hour {
			t.Errorf("the test's dates do not cross the DST change")
		}
	})

	t.Run("ALockedOrPaidActionIsNeverChangedByAFileAfterwards", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "100", event.AddDate(0, 0, -15)))
		b.lifecycle(l, lockAt) // 1 locked; 2 locked and paid
		wantState(t, b.action(l, 1), "LOCKED")
		wantState(t, b.action(l, 2), "PAID")
		for _, id := range []int64{1, 2} {
			_, out := b.apply(l, "acme", modify(id, "1"), reverse(id), approve(id), reset(id))
			for line := 2; line <= 5; line++ {
				wantOutcome(t, out[line], outcome.Rejected, outcome.ActionLocked)
			}
			wantAction(t, b.action(l, id), map[int64]string{1: "LOCKED", 2: "PAID"}[id], "100.00", "8.50")
		}
	})

	t.Run("LifecycleEventsAreNotRowOutcomes", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event))
		b.lifecycle(l, payAt)
		b.deposit(l, "acme", "50")
		var n int
		if err := l.pool.QueryRow(b.ctx, "SELECT count(*) FROM row_outcomes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("row_outcomes has %d rows, want the import's 1", n)
		}
	})
}

// checkBalances asserts the ledger's money invariants: every brand's balance is
// the sum of its events' balance deltas, and a brand with a balance >= 0 has no
// delayed payouts.
func (b *testBundle) checkBalances(l *Ledger) {
	b.t.Helper()
	rows, err := l.pool.Query(b.ctx, `
		SELECT br.slug, br.balance::text, coalesce(e.total, 0)::text, coalesce(d.n, 0)
		FROM brands br
		LEFT JOIN (SELECT brand_id, sum(balance_delta) AS total FROM ledger_events GROUP BY 1) e ON e.brand_id = br.id
		LEFT JOIN (SELECT brand_id, count(*) AS n FROM actions WHERE payout_delayed GROUP BY 1) d ON d.brand_id = br.id
		WHERE br.balance <> coalesce(e.total, 0) OR (br.balance >= 0 AND d.n > 0)`)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var slug, balance, total string
		var delayed int
		if err := rows.Scan(&slug, &balance, &total, &delayed); err != nil {
			b.t.Fatal(err)
		}
		b.t.Errorf("brand %s: balance %s, sum of balance deltas %s, %d delayed payouts", slug, balance, total, delayed)
	}
	if err := rows.Err(); err != nil {
		b.t.Fatal(err)
	}
	b.checkEventTallies(l)
}

// checkEventTallies checks that the events of no file add up, transaction by
// transaction, brand by brand and kind by kind, to what event_tallies (the
// daily report's source) says they do.
func (b *testBundle) checkEventTallies(l *Ledger) {
	b.t.Helper()
	var diffs []string
	rows, err := l.pool.Query(b.ctx, `
		WITH e AS (SELECT at, brand_id, kind, count(*)::int AS n, coalesce(sum(balance_delta), 0) AS delta
			FROM ledger_events WHERE file_id IS NULL GROUP BY 1, 2, 3),
		t AS (SELECT at, brand_id, kind, sum(events)::int AS n, sum(balance_delta) AS delta FROM event_tallies GROUP BY 1, 2, 3)
		SELECT coalesce(e.kind, t.kind) || ': ' || coalesce(e.n, 0) || ' events of ' || coalesce(e.delta, 0) ||
			', tallied ' || coalesce(t.n, 0) || ' of ' || coalesce(t.delta, 0)
		FROM e FULL JOIN t ON t.at = e.at AND t.brand_id = e.brand_id AND t.kind = e.kind
		WHERE e.n IS DISTINCT FROM t.n OR e.delta IS DISTINCT FROM t.delta`)
	if err != nil {
		b.t.Fatal(err)
	}
	if diffs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		b.t.Fatal(err)
	}
	for _, d := range diffs {
		b.t.Errorf("event tallies: %s", d)
	}
}

// TestLifecycleProperties runs random sequences of imports, update files,
// partners' inquiries and the brands' resolutions of them, lifecycle runs at an
// advancing clock and deposits, and after every step checks
// that the money adds up and that no action ever left LOCKED or PAID except
// LOCKED -> PAID through the lifecycle.
//
// It is long (20-60 s): 5 seeds of 40 steps, each step a transaction on a real
// ledger followed by the money checks; fewer would not reach delayed payouts,
// releases and paid VALID inquiries in every seed.
func TestLifecycleProperties(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{}
	t.Run("Seeds", func(t *testing.T) {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("Seed%d", seed), func(t *testing.T) {
				t.Parallel()
				counts := randomLifecycle(t, seed, 40)
				mu.Lock()
				defer mu.Unlock()
				for k, n := range counts {
					seen[k] += n
				}
			})
		}
	})
	t.Logf("events over all seeds: %v", seen)
	// The sequences must have reached the interesting states, or they prove little.
	for _, k := range []string{"LOCK", "PAY", "PAY delayed", "PAYOUT_RELEASED", "DEPOSIT", "REVERSE", "RESTORE", "ACTION_LOCKED",
		"INQUIRY_VALID PENDING", "INQUIRY_VALID PAID"} {
		if seen[k] == 0 && !t.Failed() {
			t.Errorf("no seed produced %s", k)
		}
	}
}

func randomLifecycle(t *testing.T, seed uint64, steps int) map[string]int {
	l, b := setup(t)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	clock := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	ids := map[string][]int64{}
	inquiries := map[string][]string{}
	next := int64(1)
	rejectedLocked := 0
	pick := func(brand string) int64 {
		if len(ids[brand]) == 0 {
			return 999_999 // not found: a rejected row
		}
		return ids[brand][rng.IntN(len(ids[brand]))]
	}
	for step := range steps {
		brand := "acme"
		if rng.IntN(4) == 0 {
			brand = "globex"
		}
		var did string
		switch r := rng.IntN(14); {
		case r < 3:
			var recs []processors.ActionRecord
			for range 1 + rng.IntN(6) {
				event := clock.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)
				amount := fmt.Sprintf("%d.%02d", 1+rng.IntN(300), rng.IntN(100))
				rec := saleOn(next, amount, event)
				if brand == "globex" {
					rec = globexSale(next, amount, event)
					rec.Oid = fmt.Sprintf("G-%d", next)
				} else if rng.IntN(4) == 0 {
					rec.TrackerID = 1002 + int64(rng.IntN(2)) // a lead or a click
				}
				if rng.IntN(8) == 0 {
					rec.State = "APPROVED"
				}
				ids[brand] = append(ids[brand], next)
				next++
				recs = append(recs, rec)
			}
			b.importActions(l, brand, recs...)
			did = fmt.Sprintf("import %d actions of %s", len(recs), brand)
		case r < 5:
			var rows []processors.ActionUpdate
			for range 1 + rng.IntN(6) {
				id := pick(brand)
				switch rng.IntN(5) {
				case 0:
					rows = append(rows, modify(id, fmt.Sprintf("%d.%02d", rng.IntN(300), rng.IntN(100))))
				case 1:
					rows = append(rows, reverse(id))
				case 2:
					rows = append(rows, reset(id))
				default:
					rows = append(rows, approve(id))
				}
			}
			sum, _ := b.apply(l, brand, rows...)
			rejectedLocked += sum.ByCode[outcome.ActionLocked]
			did = fmt.Sprintf("apply %d update rows to %s", len(rows), brand)
		case r < 7:
			// Partners' inquiries on orders of the last 80 days, some of whose
			// lock and payout dates are already past.
			var rows []processors.Inquiry
			for range 1 + rng.IntN(4) {
				order := clock.Add(-time.Duration(2*24+rng.IntN(78*24)) * time.Hour)
				q := inquiry(fmt.Sprintf("Q-%d", next), []int64{77, 78, 88, 89}[rng.IntN(4)], fmt.Sprintf("O-%d", rng.IntN(40)), order)
				q.SubmittedAt = clock
				if brand == "globex" {
					q.TrackerID = 2001
				}
				inquiries[brand] = append(inquiries[brand], q.InquiryID)
				next++
				rows = append(rows, q)
			}
			b.importInquiries(l, brand, clock, rows...)
			did = fmt.Sprintf("import %d inquiries of %s", len(rows), brand)
		case r < 9:
			var rows []processors.InquiryResolution
			for range 1 + rng.IntN(4) {
				id := "Q-none"
				if len(inquiries[brand]) > 0 {
					id = inquiries[brand][rng.IntN(len(inquiries[brand]))]
				}
				switch rng.IntN(4) {
				case 0:
					rows = append(rows, declined(id, processors.DeclineReasons[rng.IntN(len(processors.DeclineReasons))]))
				case 1:
					rows = append(rows, processors.InquiryResolution{InquiryID: id, Status: processors.ResolutionIncomplete})
				default:
					rows = append(rows, valid(id))
				}
			}
			b.resolve(l, brand, clock, rows...)
			created, err := l.pool.Query(b.ctx, `SELECT a.id FROM actions a JOIN brands br ON br.id = a.brand_id
				WHERE br.slug = $1 AND a.id >= 900000000000000 AND NOT (a.id = ANY($2))`, brand, ids[brand])
			if err != nil {
				t.Fatal(err)
			}
			more, err := pgx.CollectRows(created, pgx.RowTo[int64])
			if err != nil {
				t.Fatal(err)
			}
			ids[brand] = append(ids[brand], more...)
			did = fmt.Sprintf("resolve %d inquiries of %s", len(rows), brand)
		case r < 12:
			clock = clock.Add(time.Duration(rng.IntN(25*24)) * time.Hour)
			if _, err := l.RunLifecycle(b.ctx, clock); err != nil {
				t.Fatal(err)
			}
			did = "lifecycle at " + clock.Format(time.RFC3339)
		default:
			amount := fmt.Sprintf("%d.%02d", 1+rng.IntN(60), rng.IntN(100))
			b.deposit(l, brand, amount)
			did = "deposit " + amount + " to " + brand
		}
		b.checkBalances(l)
		b.checkTransitions(l)
		if t.Failed() {
			t.Fatalf("seed %d, step %d (%s) broke the ledger", seed, step, did)
		}
	}
	counts := map[string]int{"ACTION_LOCKED": rejectedLocked}
	rows, err := l.pool.Query(b.ctx, `
		SELECT kind, count(*) FROM ledger_events GROUP BY 1
		UNION ALL
		SELECT 'INQUIRY_VALID ' || a.state, count(*) FROM ledger_events e JOIN actions a ON a.id = e.action_id
		WHERE e.reason = 'INQUIRY_VALID' GROUP BY a.state
		UNION ALL
		SELECT 'PAY delayed', count(*) FROM ledger_events e JOIN actions a ON a.id = e.action_id
		WHERE e.kind = 'PAY' AND (a.payout_delayed OR EXISTS (
			SELECT 1 FROM ledger_events r WHERE r.action_id = a.id AND r.kind = 'PAYOUT_RELEASED'))`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		counts[k] += n
	}
	return counts
}

// checkTransitions asserts, from the event log alone, that every action's events
// form one chain (each starts from the state the previous one left), that the
// action is in the state its last event says, that nothing left LOCKED or PAID
// except LOCKED -> PAID by the lifecycle's PAY (and a PAID payout's release), that
// no file wrote a lifecycle event, and that an action is paid at most once.
func (b *testBundle) checkTransitions(l *Ledger) {
	b.t.Helper()
	rows, err := l.pool.Query(b.ctx, `
		WITH ev AS (
			SELECT e.*, lag(e.new_state) OVER w AS prev_state, row_number() OVER w AS n,
				count(*) FILTER (WHERE e.kind = 'PAY') OVER (PARTITION BY e.action_id) AS pays
			FROM ledger_events e WHERE e.action_id IS NOT NULL
			WINDOW w AS (PARTITION BY e.action_id ORDER BY e.id)
		)
		SELECT 'event ' || id || ' of action ' || action_id || ': ' || kind || ' ' ||
			coalesce(old_state, '-') || ' -> ' || new_state || ' after ' || coalesce(prev_state, '-') ||
			CASE WHEN file_id IS NOT NULL THEN ' by a file' ELSE '' END || ', ' || pays || ' PAY events'
		FROM ev
		WHERE (n = 1) <> (kind = 'CREATE')
			OR (n > 1 AND old_state IS DISTINCT FROM prev_state)
			OR (old_state IN ('LOCKED', 'PAID') AND NOT (
				(kind = 'PAY' AND old_state = 'LOCKED' AND new_state = 'PAID')
				OR (kind = 'PAYOUT_RELEASED' AND old_state = 'PAID' AND new_state = 'PAID')))
			OR (kind IN ('LOCK', 'PAY', 'PAYOUT_RELEASED') AND file_id IS NOT NULL)
			OR pays > 1
		UNION ALL
		SELECT 'action ' || a.id || ' is ' || a.state || ' but its last event says ' || x.new_state
		FROM actions a
		CROSS JOIN LATERAL (SELECT new_state FROM ledger_events e WHERE e.action_id = a.id ORDER BY e.id DESC LIMIT 1) x
		WHERE x.new_state <> a.state
		LIMIT 20`)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			b.t.Fatal(err)
		}
		b.t.Error(s)
	}
	if err := rows.Err(); err != nil {
		b.t.Fatal(err)
	}
}
