-- Actions the ledger creates itself (a VALID inquiry) were numbered from 2^62 up:
-- 19 digits, of which a spreadsheet keeps 15, so a brand that opened its export
-- in Excel and sent back 4611686018427390000 reversed another action. They are
-- numbered from 900000000000000 to 999999999999999 now: 15 digits, which a
-- spreadsheet keeps exactly. The sequence's bounds are the reserved range; the
-- actions import refuses ids inside it (ledger/import.go reads them from here).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM actions WHERE id BETWEEN 900000000000000 AND 999999999999999) THEN
        RAISE EXCEPTION 'actions with ids from 900000000000000 to 999999999999999 exist; '
            'that range is now reserved for actions the ledger creates: renumber them before migrating';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER SEQUENCE action_ids MINVALUE 900000000000000 MAXVALUE 999999999999999
    START 900000000000000 RESTART 900000000000000 NO CYCLE;

-- +goose Down
ALTER SEQUENCE action_ids MAXVALUE 9223372036854775807 MINVALUE 4611686018427387904
    START 4611686018427387904 RESTART 4611686018427387904;
