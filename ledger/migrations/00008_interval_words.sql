-- Messages brands read name lengths of time in words: an inquiry window of
-- '3 months' was shown as PostgreSQL prints intervals, "3 mons".

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION interval_words(i interval) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(nullif(concat_ws(' ',
        CASE WHEN y <> 0 THEN y || CASE WHEN abs(y) = 1 THEN ' year' ELSE ' years' END END,
        CASE WHEN m <> 0 THEN m || CASE WHEN abs(m) = 1 THEN ' month' ELSE ' months' END END,
        CASE WHEN d <> 0 THEN d || CASE WHEN abs(d) = 1 THEN ' day' ELSE ' days' END END,
        CASE WHEN h <> 0 THEN h || CASE WHEN abs(h) = 1 THEN ' hour' ELSE ' hours' END END,
        CASE WHEN mi <> 0 THEN mi || CASE WHEN abs(mi) = 1 THEN ' minute' ELSE ' minutes' END END,
        CASE WHEN s <> 0 THEN s || CASE WHEN abs(s) = 1 THEN ' second' ELSE ' seconds' END END), ''), '0 seconds')
    FROM (SELECT extract(year FROM i)::int AS y, extract(month FROM i)::int AS m, extract(day FROM i)::int AS d,
        extract(hour FROM i)::int AS h, extract(minute FROM i)::int AS mi, floor(extract(second FROM i))::int AS s) parts
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION interval_words(interval);
