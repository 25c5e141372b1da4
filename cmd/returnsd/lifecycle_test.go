package main

import (
	"strings"
	"testing"
)

func TestLifecycleCommand(t *testing.T) {
	t.Parallel()

	t.Run("LocksAndPaysAsOfTheGivenTimeAndPrintsWhatItDid", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)
		// By Nov 20 the fixture's LOCKED action 5006 (60.00, payout 5.10) is due for
		// payout (Nov 15); nothing else is due to lock. acme has no funds yet.
		out := c.mustRun("lifecycle", "--at", "2026-11-20T00:00:00-05:00")
		want := []string{"lifecycle at 2026-11-20T00:00:00-05:00",
			"BRAND   LOCKED  PAID  DELAYED  RELEASED  DEBITED  BALANCE",
			"acme    0       1     1        0         5.10     -5.10 USD",
			"globex  0       0     0        0         0.00     0.00 EUR"}
		if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("stdout:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
		}
		// Every action tracked in November locks by Dec 10 and is paid by Dec 25.
		out = c.mustRun("lifecycle", "--at", "2026-12-26T00:00:00Z")
		if !strings.Contains(out, "acme    9       9     9") {
			t.Errorf("stdout:\n%s\nwant 9 locked, paid and delayed for acme", out)
		}
		if again := c.mustRun("lifecycle", "--at", "2026-12-26T00:00:00Z"); !strings.Contains(again, "acme    0       0     0        0") {
			t.Errorf("a second run at the same time did something:\n%s", again)
		}
	})

	t.Run("WithoutAtItRunsAsOfNow", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)
		if out := c.mustRun("lifecycle"); !strings.HasPrefix(out, "lifecycle at ") {
			t.Errorf("stdout:\n%s", out)
		}
	})

	t.Run("MistakesAreUsageErrors", func(t *testing.T) {
		t.Parallel()
		c, _ := setupLoaded(t)
		checkOneLineError(t, c.run("lifecycle", "--at", "2026-11-20"), 2, "not an RFC 3339 time")
		checkOneLineError(t, c.run("lifecycle", "now"), 2, "lifecycle takes no arguments")
	})
}
