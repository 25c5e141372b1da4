package ledger

import (
	"context"
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
			InquiryWindowMin: k.Inquiries.Window.Min, InquiryWindowMax: k.Inquiries.Window.Max}
		if !k.OpenEnded {
			lb.LockingDays = k.LockingDays
		}
		for _, pc := range k.Partners {
			lp := PartnerContract{Partner: pc.Partner, LockingDays: lb.LockingDays, PayoutDelayDays: lb.PayoutDelayDays}
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
func (l *Ledger) SyncBrands(ctx context.Context, brands []Brand) error {
	return l.inTx(ctx, func(tx pgx.Tx) error {
		for _, b := range brands {
			var id int64
			err := tx.QueryRow(ctx, `
				INSERT INTO brands (slug, name, currency, timezone, locking_days, payout_delay_days,
					inquiries_accept, inquiry_window_min, inquiry_window_max)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, currency = EXCLUDED.currency,
					timezone = EXCLUDED.timezone, locking_days = EXCLUDED.locking_days,
					payout_delay_days = EXCLUDED.payout_delay_days, inquiries_accept = EXCLUDED.inquiries_accept,
					inquiry_window_min = EXCLUDED.inquiry_window_min, inquiry_window_max = EXCLUDED.inquiry_window_max,
					synced_at = now()
				RETURNING id`,
				b.Slug, b.Name, b.Currency, b.Timezone, b.LockingDays, b.PayoutDelayDays,
				b.InquiriesAccept, interval(b.InquiryWindowMin, config.Duration{Time: 24 * time.Hour}),
				interval(b.InquiryWindowMax, config.Duration{Months: 3})).Scan(&id)
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
		}
		return nil
	})
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
		_, err := tx.Exec(ctx, `INSERT INTO partner_contracts (brand_id, partner_id, locking_days, payout_delay_days)
			VALUES ($1, $2, $3, $4)`, brand, p.Partner, p.LockingDays, p.PayoutDelayDays)
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
