package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFunds(t *testing.T) {
	t.Parallel()

	t.Run("ADepositCreditsTheBalanceAndReleasesDelayedPayouts", func(t *testing.T) {
		t.Parallel()
		c, b := setupLoaded(t)
		c.mustRun("lifecycle", "--at", "2026-11-20T00:00:00Z") // 5006's payout of 5.10, delayed
		out := c.mustRun("funds", "deposit", "--brand", "acme", "100")
		if out != "deposited 100.00 USD to acme: balance 94.90 USD, 1 delayed payouts released\n" {
			t.Errorf("stdout = %q", out)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events WHERE kind = 'DEPOSIT' AND actor = 'cli:tester'"); n != 1 {
			t.Errorf("%d DEPOSIT events by cli:tester, want 1", n)
		}
	})

	t.Run("ExportBalancesListsEveryBrandWithItsDelayedPayouts", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)
		c.mustRun("funds", "deposit", "--brand", "acme", "10.00")
		c.mustRun("lifecycle", "--at", "2026-12-26T00:00:00Z")
		// acme's payouts: 10.20 6.80 21.25 4.00 0.10 5.10 3.87 3.87 8.50 26.35 = 90.04;
		// 10.00 covers 5006's 5.10 (paid first, on Nov 15) and not 5001's 10.20.
		csv := c.mustRun("export", "balances")
		want := "Brand,Currency,Balance,DelayedPayouts,DelayedAmount\n" +
			"acme,USD,-80.04,9,84.94\n" +
			"globex,EUR,0.00,0,0.00\n"
		if csv != want {
			t.Errorf("csv:\n%s\nwant:\n%s", csv, want)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(c.mustRun("export", "balances", "--format", "json")), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0]["Brand"] != "acme" || got[0]["Balance"] != "-80.04" ||
			got[0]["DelayedPayouts"] != float64(9) || got[0]["DelayedAmount"] != "84.94" {
			t.Errorf("json: %v", got)
		}
	})

	t.Run("MistakesAreOneLineErrors", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)
		checkOneLineError(t, c.run("funds", "deposit", "--brand", "acme", "0"), 2, "not a positive amount")
		checkOneLineError(t, c.run("funds", "deposit", "--brand", "acme", "12.345"), 2, "not a positive amount")
		checkOneLineError(t, c.run("funds", "deposit", "--brand", "acme", "ten"), 2, "not a positive amount")
		checkOneLineError(t, c.run("funds", "deposit", "100"), 2, "funds deposit: --brand is required")
		checkOneLineError(t, c.run("funds", "deposit", "--brand", "acme"), 2, "give exactly one AMOUNT")
		checkOneLineError(t, c.run("funds", "withdraw"), 2, "funds: say what to do")
		checkOneLineError(t, c.run("funds", "deposit", "--brand", "initech", "100"), 1, "initech")
		checkOneLineError(t, c.run("export", "balances", "--format", "xml"), 2, `--format is csv or json, not "xml"`)
		if strings.Contains(c.mustRun("export", "balances"), "acme,USD,0.00") == false {
			t.Errorf("a refused deposit changed the balance")
		}
	})
}
