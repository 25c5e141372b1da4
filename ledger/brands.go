package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
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
		lb := Brand{Slug: b.ID, Name: b.Name, Currency: b.Currency, Timezone: b.Timezone,
			PayoutDelayDays: b.Contract.PayoutDelayDays}
		if !b.Contract.OpenEnded {
			lb.LockingDays = b.Contract.LockingDays
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
				INSERT INTO brands (slug, name, currency, timezone, locking_days, payout_delay_days)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name, currency = EXCLUDED.currency,
					timezone = EXCLUDED.timezone, locking_days = EXCLUDED.locking_days,
					payout_delay_days = EXCLUDED.payout_delay_days, synced_at = now()
				RETURNING id`,
				b.Slug, b.Name, b.Currency, b.Timezone, b.LockingDays, b.PayoutDelayDays).Scan(&id)
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
		}
		return nil
	})
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
