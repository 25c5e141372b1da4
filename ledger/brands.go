package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/returnsd/returnsd/config"
)

// Brand is a brand's contract as the ledger keeps it (the config's brands section).
type Brand struct {
	Slug            string
	Name            string
	Currency        string
	Timezone        string
	LockingDays     *int // nil: open-ended locking
	PayoutDelayDays int
	Trackers        []Tracker
	// InquiriesAccept lets partners' inquiries in; the window is how long after
	// the order date they may come. (Whether a brand auto-resolves is the
	// config's business: it decides which brands AutoResolveInquiries runs for.)
	InquiriesAccept                    bool
	InquiryWindowMin, InquiryWindowMax config.Duration
	// ResolutionDeadline is how long an inquiry may stay open before the
	// exports flag it; zero is the config's default, 12 weeks.
	ResolutionDeadline config.Duration
	// AutoApprove is the brand's automatic approval rule; nil: none.
	AutoApprove *AutoApproveRule
	// Partners are partners' own terms, complete: what the config left unset is
	// filled from the brand's contract.
	Partners []PartnerContract
}

// PartnerContract is a partner's own terms with a brand.
type PartnerContract struct {
	Partner         int64
	LockingDays     *int // nil: open-ended locking
	PayoutDelayDays int
	Payouts         []PartnerPayout
	// Contact is the address the partner is mailed at about its inquiries; "": none.
	Contact string
	// AutoApprove replaces the brand's rule for this partner; nil: the brand's.
	AutoApprove *AutoApproveRule
}

// AutoApproveRule is an automatic approval rule (config.AutoApprove).
type AutoApproveRule struct {
	Off        bool            // a partner's exemption from the brand's rule
	After      config.Duration // after the submission, on the brand's wall clock
	Types      []string        // inquiry types it approves; empty: UNTRACKED
	MaxPayout  string          // decimal; "": no cap
	MonthlyCap string          // decimal; "": no cap
}

func autoApproveRule(a *config.AutoApprove) *AutoApproveRule {
	if a == nil {
		return nil
	}
	return &AutoApproveRule{Off: a.Off, After: a.After, Types: a.Types, MaxPayout: a.MaxPayout, MonthlyCap: a.MonthlyCap}
}

// PartnerPayout is a partner's own payout rule for one tracker.
type PartnerPayout struct {
	Tracker       int64
	PayoutPercent string
	PayoutFixed   string
}

// Tracker is one of a brand's action trackers and its payout rule.
type Tracker struct {
	ID            int64
	Name          string
	Kind          string // SALE, LEAD, INSTALL or CPC
	PayoutPercent string // decimal, for SALE
	PayoutFixed   string // decimal, for LEAD, INSTALL and CPC
}

// BrandsFromConfig maps the config's brands to the contracts the ledger keeps.
// Open-ended locking is a nil LockingDays.
func BrandsFromConfig(cfg *config.Config) []Brand {
	out := make([]Brand, 0, len(cfg.Brands))
	for _, b := range cfg.Brands {
		k := b.Contract
		lb := Brand{Slug: b.ID, Name: b.Name, Currency: b.Currency, Timezone: b.Timezone,
			PayoutDelayDays: k.PayoutDelayDays, InquiriesAccept: k.Inquiries.Accept,
			InquiryWindowMin: k.Inquiries.Window.Min, InquiryWindowMax: k.Inquiries.Window.Max,
			ResolutionDeadline: k.Inquiries.ResolutionDeadline, AutoApprove: autoApproveRule(k.Inquiries.AutoApprove)}
		if !k.OpenEnded {
			lb.LockingDays = k.LockingDays
		}
		for _, pc := range k.Partners {
			lp := PartnerContract{Partner: pc.Partner, LockingDays: lb.LockingDays, PayoutDelayDays: lb.PayoutDelayDays,
				Contact: pc.Contact, AutoApprove: autoApproveRule(pc.Inquiries.AutoApprove)}
			switch {
			case pc.OpenEnded:
				lp.LockingDays = nil
			case pc.LockingDays != nil:
				lp.LockingDays = pc.LockingDays
			}
			if pc.PayoutDelayDays != nil {
				lp.PayoutDelayDays = *pc.PayoutDelayDays
			}
			for _, po := range pc.Payouts {
				lp.Payouts = append(lp.Payouts, PartnerPayout(po))
			}
			lb.Partners = append(lb.Partners, lp)
		}
		for _, t := range b.Trackers {
			lb.Trackers = append(lb.Trackers, Tracker{ID: t.ID, Name: t.Name, Kind: string(t.Kind),
				PayoutPercent: t.PayoutPercent, PayoutFixed: t.PayoutFixed})
		}
		out = append(out, lb)
	}
	return out
}

// ErrUnknownBrand is returned for a brand slug the ledger does not know.
var ErrUnknownBrand = errors.New("unknown brand")

// SyncBrands makes the ledger's brands and trackers match the config. It is
// idempotent. Brands and trackers missing from the config are kept: actions
// reference them, and the ledger forgets nothing.
//
// When what the open inquiries' Auto Approval Dates follow from has changed
// (the automatic approval rules, the trackers, the partners' payouts, the
// timezone), it recomputes them, under the brand's lock: the date moves with
// the rule.
func (l *Ledger) SyncBrands(ctx context.Context, brands []Brand) error {
	return l.inTx(ctx, func(tx pgx.Tx) error {
		for _, b := range brands {
			terms, err := autoApprovalTerms(b)
			if err != nil {
				return fmt.Errorf("ledger: sync brand %s: %w", b.Slug, err)
			}
			// The brand's lock comes before its row: an apply holds the lock
			// while it updates the row (the balance), so the other order could
			// deadlock with it.
			var id int64
			changed := false
			err = tx.QueryRow(ctx, "SELECT id, auto_approval_terms IS DISTINCT FROM $2::jsonb FROM brands WHERE slug = $1",
				b.Slug, terms).Scan(&id, &changed)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
			case err != nil:
				return fmt.Errorf("ledger: sync brand %s: %w", b.Slug, interpretError(err))
			case changed:
				if err := lockBrand(ctx, tx, id); err != nil {
					return fmt.Errorf("ledger: sync brand %s: %w", b.Slug, err)
				}
			}
			err = tx.QueryRow(ctx, `
				INSERT INTO brands (slug, name, currency, timezone, locking_days, payout_delay_days,
					inquiries_accept, inquiry_window_min, inquiry_window_max, inquiry_resolution_deadline,
					auto_approval_terms)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, currency = EXCLUDED.currency,
					timezone = EXCLUDED.timezone, locking_days = EXCLUDED.locking_days,
					payout_delay_days = EXCLUDED.payout_delay_days, inquiries_accept = EXCLUDED.inquiries_accept,
					inquiry_window_min = EXCLUDED.inquiry_window_min, inquiry_window_max = EXCLUDED.inquiry_window_max,
					inquiry_resolution_deadline = EXCLUDED.inquiry_resolution_deadline,
					auto_approval_terms = EXCLUDED.auto_approval_terms,
					synced_at = now()
				RETURNING id`,
				b.Slug, b.Name, b.Currency, b.Timezone, b.LockingDays, b.PayoutDelayDays,
				b.InquiriesAccept, interval(b.InquiryWindowMin, config.Duration{Time: 24 * time.Hour}),
				interval(b.InquiryWindowMax, config.Duration{Months: 3}),
				interval(b.ResolutionDeadline, config.Duration{Days: 7 * 12}), terms).Scan(&id)
			if err != nil {
				return fmt.Errorf("ledger: sync brand %s: %w", b.Slug, interpretError(err))
			}
			for _, t := range b.Trackers {
				_, err := tx.Exec(ctx, `
					INSERT INTO trackers (brand_id, id, name, kind, payout_percent, payout_fixed)
					VALUES ($1, $2, $3, $4, NULLIF($5, '')::numeric, NULLIF($6, '')::numeric)
					ON CONFLICT (brand_id, id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
						payout_percent = EXCLUDED.payout_percent, payout_fixed = EXCLUDED.payout_fixed`,
					id, t.ID, t.Name, t.Kind, t.PayoutPercent, t.PayoutFixed)
				if err != nil {
					return fmt.Errorf("ledger: sync brand %s tracker %d: %w", b.Slug, t.ID, interpretError(err))
				}
			}
			if err := syncPartners(ctx, tx, id, b); err != nil {
				return fmt.Errorf("ledger: sync brand %s partners: %w", b.Slug, err)
			}
			if err := syncAutoApprovalRules(ctx, tx, id, b); err != nil {
				return fmt.Errorf("ledger: sync brand %s auto-approval rules: %w", b.Slug, err)
			}
			if changed {
				moved, err := recomputeAutoApprovalDates(ctx, tx, id)
				if err != nil {
					return fmt.Errorf("ledger: sync brand %s: Auto Approval Dates: %w", b.Slug, err)
				}
				l.logger.InfoContext(ctx, "automatic approval terms changed: Auto Approval Dates recomputed",
					"brand", b.Slug, "inquiries_moved", moved)
			}
		}
		return nil
	})
}

// autoApprovalTerms is what a brand's Auto Approval Dates follow from, as JSON:
// the rules, the trackers' and partners' payouts (the max_payout cap), and the
// timezone. nil when neither the brand nor a partner has a rule.
func autoApprovalTerms(b Brand) ([]byte, error) {
	type partnerTerms struct {
		Partner int64
		Rule    *AutoApproveRule
		Payouts []PartnerPayout
	}
	terms := struct {
		Timezone string
		Rule     *AutoApproveRule
		Trackers []Tracker
		Partners []partnerTerms
	}{Timezone: b.Timezone, Rule: b.AutoApprove, Trackers: b.Trackers}
	hasRule := b.AutoApprove != nil && !b.AutoApprove.Off
	for _, p := range b.Partners {
		terms.Partners = append(terms.Partners, partnerTerms{Partner: p.Partner, Rule: p.AutoApprove, Payouts: p.Payouts})
		hasRule = hasRule || (p.AutoApprove != nil && !p.AutoApprove.Off)
	}
	if !hasRule {
		return nil, nil
	}
	return json.Marshal(terms)
}

// syncAutoApprovalRules replaces the brand's rules with the config's: the
// brand's own as partner 0, and the partners' own.
func syncAutoApprovalRules(ctx context.Context, tx pgx.Tx, brand int64, b Brand) error {
	if _, err := tx.Exec(ctx, "DELETE FROM auto_approval_rules WHERE brand_id = $1", brand); err != nil {
		return interpretError(err)
	}
	insert := func(partner int64, r *AutoApproveRule) error {
		if r == nil {
			return nil
		}
		var after *pgtype.Interval
		if !r.Off {
			iv := interval(r.After, config.Duration{})
			after = &iv
		}
		types := r.Types
		if len(types) == 0 && !r.Off {
			types = []string{"UNTRACKED"}
		}
		_, err := tx.Exec(ctx, `INSERT INTO auto_approval_rules (brand_id, partner_id, enabled, after, types, max_payout, monthly_cap)
			VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')::numeric, NULLIF($7, '')::numeric)`,
			brand, partner, !r.Off, after, append([]string{}, types...), r.MaxPayout, r.MonthlyCap)
		return interpretError(err)
	}
	if err := insert(0, b.AutoApprove); err != nil {
		return err
	}
	for _, p := range b.Partners {
		if err := insert(p.Partner, p.AutoApprove); err != nil {
			return fmt.Errorf("partner %d: %w", p.Partner, err)
		}
	}
	return nil
}

// recomputeAutoApprovalDates gives the brand's NEW inquiries the Auto Approval
// Date the current rules say (NULL where none applies); it returns how many
// moved. The caller holds the brand's lock, so no file or job of the brand is
// half-way.
func recomputeAutoApprovalDates(ctx context.Context, tx pgx.Tx, brand int64) (int64, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE inquiries i SET auto_approve_at = d.due_at
		FROM (
			SELECT i.id, v.due_at FROM inquiries i LEFT JOIN inquiry_auto_approval v ON v.id = i.id
			WHERE i.brand_id = $1 AND i.status = 'NEW'
		) d
		WHERE i.id = d.id AND i.auto_approve_at IS DISTINCT FROM d.due_at`, brand)
	if err != nil {
		return 0, interpretError(err)
	}
	return tag.RowsAffected(), nil
}

// syncPartners replaces the brand's partner contracts with the config's. They are a
// copy of the config, not history: actions keep the dates they were given.
func syncPartners(ctx context.Context, tx pgx.Tx, brand int64, b Brand) error {
	for _, sql := range []string{"DELETE FROM partner_payouts WHERE brand_id = $1", "DELETE FROM partner_contracts WHERE brand_id = $1"} {
		if _, err := tx.Exec(ctx, sql, brand); err != nil {
			return interpretError(err)
		}
	}
	for _, p := range b.Partners {
		_, err := tx.Exec(ctx, `INSERT INTO partner_contracts (brand_id, partner_id, locking_days, payout_delay_days, contact)
			VALUES ($1, $2, $3, $4, NULLIF($5, ''))`, brand, p.Partner, p.LockingDays, p.PayoutDelayDays, p.Contact)
		if err != nil {
			return interpretError(err)
		}
		for _, po := range p.Payouts {
			_, err := tx.Exec(ctx, `INSERT INTO partner_payouts (brand_id, partner_id, tracker_id, payout_percent, payout_fixed)
				VALUES ($1, $2, $3, NULLIF($4, '')::numeric, NULLIF($5, '')::numeric)`,
				brand, p.Partner, po.Tracker, po.PayoutPercent, po.PayoutFixed)
			if err != nil {
				return fmt.Errorf("partner %d tracker %d: %w", p.Partner, po.Tracker, interpretError(err))
			}
		}
	}
	return nil
}

// interval turns a contract's duration into a PostgreSQL interval, which keeps
// months, days and clock time apart just as config.Duration does. A zero
// duration (a Brand not made from a config with defaults) is the config's default, def.
func interval(d, def config.Duration) pgtype.Interval {
	if d.IsZero() {
		d = def
	}
	return pgtype.Interval{Months: int32(d.Months), Days: int32(d.Days), Microseconds: d.Time.Microseconds(), Valid: true}
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func brandID(ctx context.Context, q querier, slug string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, "SELECT id FROM brands WHERE slug = $1", slug).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("%w %q (is it in the config's brands section?)", ErrUnknownBrand, slug)
	}
	return id, interpretError(err)
}
