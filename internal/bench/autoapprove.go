package main

// ---- Auto-approval phase (issue 12) -----------------------------------------
//
// benchAutoApprove times `returnsd inquiries auto-approve` over n NEW inquiries
// whose Auto Approval Date has come, under a rule with a max_payout (none is
// over it) and a monthly cap (so the cap's window runs over all of them, none is
// held by it), spread over 5,000
// partners, 100 of whom have a contact (their changes are queued for mail in
// the same transaction). Their orders are old enough that every approval's new
// action is locked and paid at once, on an empty balance: n actions created,
// n CREATE, LOCK and PAY events, n delayed payouts. The inquiries and their
// submission history are generated with INSERT ... SELECT generate_series; the
// first command with the rule's config computes their Auto Approval Dates
// (timed too), and the approval is timed alone. Target: < 30 s.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	root "github.com/returnsd/returnsd"
)

func benchAutoApprove(ctx context.Context, bin, dir string, admin *pgx.Conn, serverURL string, n int) error {
	if _, err := admin.Exec(ctx, "CREATE DATABASE autoapprove"); err != nil {
		return err
	}
	url := strings.Replace(serverURL, "/postgres?", "/autoapprove?", 1)
	if _, _, err := returnsd(ctx, bin, url, "migrate"); err != nil {
		return err
	}
	// The example config's acme with an automatic approval rule, and 100
	// partners who are mailed (an smtp section is required for that; nothing is sent).
	var partners strings.Builder
	partners.WriteString("      partners:\n")
	for p := 1000; p < 1100; p++ {
		fmt.Fprintf(&partners, "        - {partner: %d, contact: claims@partner%d.example}\n", p, p)
	}
	text := string(root.ExampleConfig)
	for _, e := range [][2]string{
		{"        resolution_deadline: 12w", "        resolution_deadline: 12w\n" +
			`        auto_approve: {after: 30d, max_payout: "50.00", monthly_cap: "100000.00"}` + "\n" +
			strings.TrimSuffix(partners.String(), "\n")},
		{"log:\n", "smtp:\n  address: smtp.invalid:465\n  from: returns@platform.example\nlog:\n"},
	} {
		if !strings.Contains(text, e[0]) {
			return fmt.Errorf("auto-approval: the example config has no %q", e[0])
		}
		text = strings.Replace(text, e[0], e[1], 1)
	}
	cfg := filepath.Join(dir, "autoapprove.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return err
	}
	// The brands, without the rule yet: the dates are computed when it comes.
	if _, _, err := returnsd(ctx, bin, url, "export", "balances"); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	start := time.Now()
	// Orders from Sep 1 to Oct 20, 2026 (New York), submitted two days later:
	// due by Nov 22, locked by Nov 19 and paid by Dec 4.
	for _, q := range []string{
		`INSERT INTO partners (id) SELECT g FROM generate_series(1000, 5999) g ON CONFLICT DO NOTHING`,
		`INSERT INTO received_files (brand_id, source, name, size, sha256, status, bytes_kept)
		SELECT id, 'bench', 'inquiries.csv', 0, '\x00', 'COMPLETED', false FROM brands WHERE slug = 'acme'`,
		`INSERT INTO inquiries (brand_id, inquiry_id, partner_id, oid, type, tracker_id, transaction_date,
			sale_amount, expected_payout, submitted_at, file_id, line)
		SELECT b.id, 'INQ-' || g, 1000 + g % 5000, 'INQ-ORD-' || g, 'UNTRACKED', 1001, x.ev,
			x.amount, CASE WHEN g % 3 = 0 THEN round(x.amount * 0.07, 2) END, x.ev + interval '2 days', f.id, g + 1
		FROM brands b
		JOIN received_files f ON f.brand_id = b.id AND f.source = 'bench'
		CROSS JOIN generate_series(1, $1::int) g
		CROSS JOIN LATERAL (SELECT timestamptz '2026-09-01 04:00Z' + (g % 1200) * interval '1 hour' AS ev,
			(5 + g % 500 + (g % 97) / 100.0)::numeric(14, 2) AS amount) x
		WHERE b.slug = 'acme'`,
		`INSERT INTO inquiry_history (at, brand_id, inquiry, partner_id, new_status, actor, file_id, line)
		SELECT submitted_at, brand_id, id, partner_id, 'NEW', 'bench', file_id, line FROM inquiries ORDER BY id`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, n)
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("generate inquiries: %w", err)
		}
	}
	fmt.Printf("auto-approval: generated %d NEW inquiries with their history (INSERT ... SELECT generate_series) in %s\n",
		n, time.Since(start).Round(time.Millisecond))
	if err := vacuum(ctx, url); err != nil {
		return err
	}
	took, _, err := returnsd(ctx, bin, url, "export", "balances", "--config", cfg)
	if err != nil {
		return err
	}
	var dated, due int
	if err := conn.QueryRow(ctx, `SELECT count(auto_approve_at), count(*) FILTER (WHERE auto_approve_at <= '2026-12-15')
		FROM inquiries`).Scan(&dated, &due); err != nil {
		return err
	}
	fmt.Printf("auto-approval: the rule's Auto Approval Dates of %d inquiries computed by the config's sync in %.1f s\n",
		dated, took.Seconds())
	if dated != n || due != n {
		return fmt.Errorf("auto-approval: %d inquiries dated, %d due by Dec 15, want all %d", dated, due, n)
	}
	if err := vacuum(ctx, url); err != nil {
		return err
	}
	took, _, out, err := run(ctx, bin, url, "inquiries", "auto-approve", "--config", cfg, "--brand", "acme",
		"--at", "2026-12-15T12:00:00-05:00")
	if err != nil {
		return err
	}
	fmt.Print(out)
	var valid, creates, locks, pays, notices int
	var balanceOK bool
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM inquiries WHERE status = 'VALID' AND resolved_by = 'auto-approval'),
		(SELECT count(*) FROM ledger_events WHERE kind = 'CREATE' AND actor = 'auto-approval'),
		(SELECT count(*) FROM ledger_events WHERE kind = 'LOCK'),
		(SELECT count(*) FROM ledger_events WHERE kind = 'PAY'),
		(SELECT count(*) FROM inquiry_notices),
		(SELECT balance FROM brands WHERE slug = 'acme') = (SELECT coalesce(sum(balance_delta), 0) FROM ledger_events)`).
		Scan(&valid, &creates, &locks, &pays, &notices, &balanceOK)
	if err != nil {
		return err
	}
	if valid != n || creates != n || locks != n || pays != n || !balanceOK {
		return fmt.Errorf("auto-approval: %d VALID, %d CREATE, %d LOCK, %d PAY events for %d inquiries, balance matches events: %v",
			valid, creates, locks, pays, n, balanceOK)
	}
	fmt.Printf("auto-approval of %d due inquiries: %.1f s (target < 30 s); each a new action locked and paid at once, "+
		"%d changes queued for partners' mail\n", n, took.Seconds(), notices)
	if took > 30*time.Second {
		fmt.Println("bench: a target was missed")
	}
	return nil
}
