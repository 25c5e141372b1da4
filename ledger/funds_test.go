package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/returnsd/returnsd/money"
)

func TestDeposit(t *testing.T) {
	t.Parallel()
	// acme pays an action tracked at 2026-11-01 07:00 EST on 2026-12-16 07:00 EST.
	event := time.Date(2026, 11, 1, 7, 0, 0, 0, newYork)
	payAt := time.Date(2026, 12, 16, 7, 0, 0, 0, newYork)

	t.Run("CreditsTheBalanceWithADepositEvent", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		res := b.deposit(l, "acme", "125.50")
		if res.Balance.String() != "125.50" || res.Released != 0 {
			t.Errorf("%+v, want balance 125.50", res)
		}
		var actor, delta string
		var action *int64
		var state *string
		err := l.pool.QueryRow(b.ctx, `SELECT actor, balance_delta::text, action_id, new_state
			FROM ledger_events WHERE kind = 'DEPOSIT'`).Scan(&actor, &delta, &action, &state)
		if err != nil {
			t.Fatal(err)
		}
		if actor != "test" || delta != "125.50" || action != nil || state != nil {
			t.Errorf("DEPOSIT event: actor %s, delta %s, action %v, state %v", actor, delta, action, state)
		}
		b.checkBalances(l)
	})

	t.Run("ADepositReleasesDelayedPayoutsOldestFirstAsFarAsItCovers", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.deposit(l, "acme", "10")
		// Paid in (payout date, id) order: 3 first (an earlier event), then 1, then 2.
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "100", event), saleOn(3, "100", event.Add(-time.Hour)))
		b.lifecycle(l, payAt)
		// 10 - 8.50 = 1.50 (3 covered), -7.00 (1 delayed), -15.50 (2 delayed)
		for id, want := range map[int64]bool{3: false, 1: true, 2: true} {
			if d := b.delayed(l, id); d != want {
				t.Errorf("action %d: payout_delayed %v, want %v", id, d, want)
			}
		}
		res := b.deposit(l, "acme", "10") // -5.50: covers 1 (the older), not 2
		if res.Released != 1 || res.Balance.String() != "-5.50" {
			t.Errorf("first deposit: %+v, want 1 released, balance -5.50", res)
		}
		if b.delayed(l, 1) || !b.delayed(l, 2) {
			t.Errorf("after the first deposit: 1 delayed %v, 2 delayed %v; want false, true", b.delayed(l, 1), b.delayed(l, 2))
		}
		if k := b.kinds(l, 1); k[len(k)-1] != "PAYOUT_RELEASED" {
			t.Errorf("events of 1: %v, want PAYOUT_RELEASED last", k)
		}
		res = b.deposit(l, "acme", "5.49")
		if res.Released != 0 || !b.delayed(l, 2) {
			t.Errorf("a deposit one cent short released %d", res.Released)
		}
		res = b.deposit(l, "acme", "0.01")
		if res.Released != 1 || res.Balance.String() != "0.00" || b.delayed(l, 2) {
			t.Errorf("the last cent: %+v, want 1 released, balance 0.00", res)
		}
		var bal Balance
		bals, err := l.Balances(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range bals {
			if x.Brand == "acme" {
				bal = x
			}
		}
		if bal.DelayedCount != 0 || bal.Balance != 0 {
			t.Errorf("balances: %+v", bal)
		}
	})

	t.Run("ANewPayoutWaitsBehindOlderDelayedOnes", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "100", event.AddDate(0, 0, 1)))
		b.lifecycle(l, payAt) // 1 paid, delayed: balance -8.50
		b.deposit(l, "acme", "5")
		b.lifecycle(l, payAt.AddDate(0, 0, 1)) // 2 paid: -3.50 - 8.50
		if !b.delayed(l, 1) || !b.delayed(l, 2) {
			t.Errorf("delayed: 1 %v, 2 %v, want both", b.delayed(l, 1), b.delayed(l, 2))
		}
		res := b.deposit(l, "acme", "4")
		if res.Released != 1 || b.delayed(l, 1) || !b.delayed(l, 2) {
			t.Errorf("%+v: the older payout is released first", res)
		}
	})

	t.Run("ADepositMustBePositive", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		for _, a := range []money.Amount{0, -100} {
			if _, err := l.Deposit(b.ctx, "acme", a, "test"); !errors.Is(err, ErrInvalidDeposit) {
				t.Errorf("deposit %s: %v, want ErrInvalidDeposit", a, err)
			}
		}
		if _, err := l.Deposit(b.ctx, "nobody", amt("1"), "test"); !errors.Is(err, ErrUnknownBrand) {
			t.Errorf("deposit to an unknown brand: %v", err)
		}
		if n := b.totalEvents(l); n != 0 {
			t.Errorf("%d events written", n)
		}
	})

	t.Run("BalancesListEveryBrandWithItsDelayedPayouts", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", saleOn(1, "100", event), saleOn(2, "200", event))
		b.deposit(l, "acme", "10")
		b.deposit(l, "globex", "3")
		b.lifecycle(l, payAt)
		got, err := l.Balances(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []Balance{
			{Brand: "acme", Currency: "USD", Balance: -1550, DelayedCount: 1, DelayedAmount: 1700},
			{Brand: "globex", Currency: "EUR", Balance: 300},
		}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("balances %+v, want %+v", got, want)
		}
	})
}
