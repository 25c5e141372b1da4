package main

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestUsers(t *testing.T) {
	t.Parallel()

	t.Run("AddListPasswdRemove", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		c.mustRun("migrate")
		c.stdin = "a-long-enough-password\n"
		if out := c.mustRun("users", "add", "--role", "ops", "Olga"); out != "user olga added (ops: every brand)\n" {
			t.Errorf("stdout = %q", out)
		}
		c.stdin = "another-long-password\n"
		if out := c.mustRun("users", "add", "--brand", "acme", "--brand", "globex", "anna"); out != "user anna added (brand, read-only: acme, globex)\n" {
			t.Errorf("stdout = %q", out)
		}
		list := c.mustRun("users", "list")
		for _, want := range []string{"NAME", "anna  brand  acme,globex", "olga  ops    (all)", "never"} {
			if !strings.Contains(list, want) {
				t.Errorf("users list lacks %q:\n%s", want, list)
			}
		}
		// The password is stored as a bcrypt hash of what stdin said.
		var hash string
		if err := b.db.QueryRow(t.Context(), "SELECT password_hash FROM web_users WHERE name = 'anna'").Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte("another-long-password")) != nil {
			t.Errorf("anna's hash %q is not of her password", hash)
		}
		if cost, _ := bcrypt.Cost([]byte(hash)); cost < 12 {
			t.Errorf("bcrypt cost %d", cost)
		}
		c.stdin = "a-new-password-for-anna\n"
		c.mustRun("users", "passwd", "anna")
		c.mustRun("users", "remove", "olga")
		if list := c.mustRun("users", "list"); strings.Contains(list, "olga") {
			t.Errorf("olga is still listed:\n%s", list)
		}
		// Each change is in the audit trail, by the person at the terminal.
		if n := b.queryInt(t, "SELECT count(*) FROM audit_log WHERE actor = 'cli:tester' AND action LIKE 'users.%'"); n != 4 {
			t.Errorf("%d user changes audited, want 4", n)
		}
	})

	t.Run("MistakesChangeNothing", func(t *testing.T) {
		t.Parallel()
		c, b := setup(t)
		c.mustRun("migrate")
		for _, tc := range []struct {
			stdin string
			args  []string
			code  int
			says  string
		}{
			{"a-long-enough-password\n", []string{"users", "add", "olga"}, 2, "say --role ops"},
			{"a-long-enough-password\n", []string{"users", "add", "--role", "brand", "olga"}, 2, "needs --brand"},
			{"a-long-enough-password\n", []string{"users", "add", "--role", "ops", "--brand", "acme", "olga"}, 2, "every brand"},
			{"a-long-enough-password\n", []string{"users", "add", "--brand", "nosuch", "olga"}, 2, "unknown brand"},
			{"short\n", []string{"users", "add", "--role", "ops", "olga"}, 1, "shorter than 12"},
			{"", []string{"users", "add", "--role", "ops", "olga"}, 1, "no password on stdin"},
			{"a-long-enough-password\n", []string{"users", "add", "--role", "ops", "olga/../x"}, 1, "lower-case letters"},
			{"a-long-enough-password\n", []string{"users", "passwd", "nobody"}, 1, "no such user"},
			{"", []string{"users", "remove", "nobody"}, 1, "no such user"},
			{"", []string{"users", "frobnicate"}, 2, "unknown subcommand"},
		} {
			c.stdin = tc.stdin
			o := c.run(tc.args...)
			if o.code != tc.code || !strings.Contains(o.stderr, tc.says) {
				t.Errorf("%v: exit %d, stderr %q; want %d saying %q", tc.args, o.code, o.stderr, tc.code, tc.says)
			}
		}
		if n := b.queryInt(t, "SELECT count(*) FROM web_users"); n != 0 {
			t.Errorf("%d users after mistakes only", n)
		}
		c.stdin = "a-long-enough-password\n"
		c.mustRun("users", "add", "--role", "ops", "olga")
		if o := c.run("users", "add", "--role", "ops", "olga"); o.code != 1 || !strings.Contains(o.stderr, "exists") {
			t.Errorf("a second olga: %d %q", o.code, o.stderr)
		}
	})
}
