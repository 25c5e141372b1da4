-- The contract lifecycle and funds (SPEC §2): brand balances, and the events that
-- lock and pay actions, record deposits and release delayed payouts.

-- +goose Up

-- The brand's funds. Written only in the statements that append the events moving
-- money, so balance = sum(ledger_events.balance_delta) of the brand, exactly.
ALTER TABLE brands ADD COLUMN balance numeric(16, 2) NOT NULL DEFAULT 0;

-- A DEPOSIT belongs to the brand, not to an action: it has no action, state or amounts.
ALTER TABLE ledger_events
    ALTER COLUMN action_id DROP NOT NULL,
    ALTER COLUMN new_state DROP NOT NULL,
    ALTER COLUMN new_amount DROP NOT NULL,
    ALTER COLUMN new_payout DROP NOT NULL,
    -- What the event did to the brand's balance; NULL for events that move no money.
    ADD COLUMN balance_delta numeric(16, 2),
    DROP CONSTRAINT ledger_events_kind_check,
    ADD CONSTRAINT ledger_events_kind_check CHECK (kind IN ('CREATE', 'MODIFY', 'REVERSE', 'APPROVE',
        'RESTORE', 'RESET', 'LOCK', 'PAY', 'DEPOSIT', 'PAYOUT_RELEASED')),
    ADD CONSTRAINT ledger_events_action_or_brand CHECK (CASE WHEN kind = 'DEPOSIT'
        THEN action_id IS NULL AND new_state IS NULL
        ELSE action_id IS NOT NULL AND new_state IS NOT NULL AND new_amount IS NOT NULL AND new_payout IS NOT NULL END),
    ADD CONSTRAINT ledger_events_money_moves CHECK (CASE
        WHEN kind = 'DEPOSIT' THEN balance_delta > 0
        WHEN kind = 'PAY' THEN balance_delta <= 0
        ELSE balance_delta IS NULL END);

-- The delayed payouts of a brand, which a deposit releases. Few rows, and a
-- partial index on a column the file apply never writes: the apply's updates stay
-- HOT. (Due-for-locking and due-for-payout actions have no index on purpose: one on
-- state would make every reversal and approval of an apply a non-HOT update; the
-- lifecycle scans the brand's actions instead, see lifecycle.go.)
CREATE INDEX actions_payout_delayed ON actions (brand_id) WHERE payout_delayed;

-- +goose Down
-- Fails once the lifecycle has written events: the ledger forgets nothing.
DROP INDEX actions_payout_delayed;
ALTER TABLE ledger_events
    DROP CONSTRAINT ledger_events_money_moves,
    DROP CONSTRAINT ledger_events_action_or_brand,
    DROP CONSTRAINT ledger_events_kind_check,
    ADD CONSTRAINT ledger_events_kind_check CHECK (kind IN ('CREATE', 'MODIFY', 'REVERSE', 'APPROVE', 'RESTORE', 'RESET')),
    DROP COLUMN balance_delta,
    ALTER COLUMN new_payout SET NOT NULL,
    ALTER COLUMN new_amount SET NOT NULL,
    ALTER COLUMN new_state SET NOT NULL,
    ALTER COLUMN action_id SET NOT NULL;
ALTER TABLE brands DROP COLUMN balance;
