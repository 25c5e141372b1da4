-- Half of each page of actions is left free (issue 13). An apply or a lifecycle
-- run rewrites many of a brand's actions at once; an update that finds room on
-- its row's page is HOT and touches no index, one that does not writes a new
-- entry in every index of actions. At 80 a quarter of a million-row file's
-- updates were HOT, at 50 all but a handful: the apply of that file 25% faster,
-- the lifecycle over a million due actions 10-35% (measured in make bench), for
-- a table 63% larger (208 -> 339 MB per million actions, read whole only by the
-- lifecycle and the exports).
--
-- Pages written before this keep their fill until they are rewritten: on an
-- existing ledger, run VACUUM FULL actions (or pg_repack) in a quiet hour.

-- +goose Up
ALTER TABLE actions SET (fillfactor = 50);

-- +goose Down
ALTER TABLE actions SET (fillfactor = 80);
