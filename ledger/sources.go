package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/outcome"
)

// ListedFile is a file as a source listed it: the key of the seen table.
type ListedFile struct {
	Path    string // full path (or identifier) on the source
	Size    int64
	ModTime time.Time // kept to the microsecond
}

// SourceFileState is what the ledger knows of a listed file.
type SourceFileState string

const (
	// SourceFileNew: first listed now. It is not stable yet: it must be listed
	// again unchanged (or have its done-marker) before it is taken.
	SourceFileNew SourceFileState = "NEW"
	// SourceFileSeen: listed before with the same size and time, not yet done.
	SourceFileSeen SourceFileState = "SEEN"
	// SourceFileReceived: fetched, its bytes kept as a received file; it waits
	// to be applied, answered and acknowledged (by its own job).
	SourceFileReceived SourceFileState = "RECEIVED"
	// SourceFileDone: its outcome is committed; the source's copy is still to be acknowledged.
	SourceFileDone SourceFileState = "DONE"
	// SourceFileAcked: done and acknowledged (moved, deleted or left for good).
	SourceFileAcked SourceFileState = "ACKED"
)

// SeenFile is the ledger's memory of one listed file.
type SeenFile struct {
	State  SourceFileState
	Status outcome.FileStatus // for DONE and ACKED: COMPLETED, DUPLICATE_FILE or QUARANTINED
	FileID int64              // for RECEIVED, DONE and ACKED: the received file, 0 when none was recorded
	// SeenFor is how long ago, by the database's clock, the file was first
	// listed as it is now (0 when first listed now): its age by our own clock,
	// whatever the server's clock says its modification time is.
	SeenFor time.Duration
}

// ObserveSourceFiles records a source's listing and returns, for each file in the
// order given, what was known of it before this listing. Entries of files that were
// never done and are no longer listed as they were (changed or gone) are forgotten,
// so a file that keeps growing is never judged stable on an old observation.
func (l *Ledger) ObserveSourceFiles(ctx context.Context, source string, files []ListedFile) ([]SeenFile, error) {
	paths := make([]string, len(files))
	sizes := make([]int64, len(files))
	times := make([]time.Time, len(files))
	for i, f := range files {
		paths[i], sizes[i], times[i] = storedName(f.Path), f.Size, f.ModTime.UTC()
	}
	out := make([]SeenFile, len(files))
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		// The SELECT reads the snapshot taken before the INSERT in the same statement:
		// a file inserted now comes back as NEW.
		rows, err := tx.Query(ctx, `
			WITH listed AS (
				SELECT * FROM unnest($2::text[], $3::bigint[], $4::timestamptz[]) WITH ORDINALITY AS l(path, size, mod_time, ord)
			), ins AS (
				INSERT INTO source_files (source, path, size, mod_time)
				SELECT $1, path, size, mod_time FROM listed
				ON CONFLICT (source, path, size, mod_time) DO UPDATE SET last_seen = now()
			)
			SELECT l.ord, coalesce(s.state, 'NEW'), coalesce(s.status, ''), coalesce(s.file_id, 0),
				coalesce(extract(epoch FROM now() - s.first_seen)::float8, 0)
			FROM listed l
			LEFT JOIN source_files s ON s.source = $1 AND s.path = l.path AND s.size = l.size AND s.mod_time = l.mod_time
			ORDER BY l.ord`, source, paths, sizes, times)
		if err != nil {
			return interpretError(err)
		}
		for rows.Next() {
			var ord int64
			var state, status string
			var fileID int64
			var seconds float64
			if err := rows.Scan(&ord, &state, &status, &fileID, &seconds); err != nil {
				rows.Close()
				return interpretError(err)
			}
			out[ord-1] = SeenFile{State: SourceFileState(state), Status: outcome.FileStatus(status), FileID: fileID,
				SeenFor: time.Duration(seconds * float64(time.Second))}
		}
		if err := rows.Err(); err != nil {
			return interpretError(err)
		}
		_, err = tx.Exec(ctx, `
			DELETE FROM source_files s
			WHERE s.source = $1 AND s.state = 'SEEN' AND NOT EXISTS (
				SELECT 1 FROM unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS l(path, size, mod_time)
				WHERE l.path = s.path AND l.size = s.size AND l.mod_time = s.mod_time)`,
			source, paths, sizes, times)
		return interpretError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: observe source %s: %w", source, err)
	}
	return out, nil
}

// SourceFileDoneParams records what became of a fetched file.
type SourceFileDoneParams struct {
	Source string
	File   ListedFile
	SHA256 []byte
	FileID int64 // the received file; 0 when the ledger recorded none
	Status outcome.FileStatus
}

// markSourceFileReceived records, in the transaction that received its bytes,
// that a listed file is the received file fileID.
func markSourceFileReceived(ctx context.Context, tx pgx.Tx, k SourceFileKey, sha256 []byte, fileID int64) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO source_files (source, path, size, mod_time, state, sha256, file_id)
		VALUES ($1, $2, $3, $4, 'RECEIVED', $5, $6)
		ON CONFLICT (source, path, size, mod_time) DO UPDATE
		SET state = 'RECEIVED', sha256 = EXCLUDED.sha256, file_id = EXCLUDED.file_id
		WHERE source_files.state = 'SEEN'`,
		k.Source, storedName(k.File.Path), k.File.Size, k.File.ModTime.UTC(), sha256, fileID)
	return interpretError(err)
}

// MarkSourceFileDone records that a listed file's outcome is committed (and its
// result delivered). From then on it is never fetched again; it only awaits its
// acknowledgement.
func (l *Ledger) MarkSourceFileDone(ctx context.Context, p SourceFileDoneParams) error {
	var fileID *int64
	if p.FileID != 0 {
		fileID = &p.FileID
	}
	_, err := l.pool.Exec(ctx, `
		INSERT INTO source_files (source, path, size, mod_time, state, sha256, file_id, status, done_at)
		VALUES ($1, $2, $3, $4, 'DONE', $5, $6, $7, now())
		ON CONFLICT (source, path, size, mod_time) DO UPDATE
		SET state = 'DONE', sha256 = coalesce(EXCLUDED.sha256, source_files.sha256),
			file_id = coalesce(EXCLUDED.file_id, source_files.file_id), status = EXCLUDED.status, done_at = now()
		WHERE source_files.state IN ('SEEN', 'RECEIVED')`,
		p.Source, storedName(p.File.Path), p.File.Size, p.File.ModTime.UTC(), p.SHA256, fileID, string(p.Status))
	if err != nil {
		return fmt.Errorf("ledger: mark %s of source %s done: %w", storedName(p.File.Path), p.Source, interpretError(err))
	}
	return nil
}

// MarkSourceFileAcked records that a done file's source copy was acknowledged.
func (l *Ledger) MarkSourceFileAcked(ctx context.Context, source string, f ListedFile) error {
	_, err := l.pool.Exec(ctx, `
		UPDATE source_files SET state = 'ACKED', acked_at = now()
		WHERE source = $1 AND path = $2 AND size = $3 AND mod_time = $4 AND state = 'DONE'`,
		source, storedName(f.Path), f.Size, f.ModTime.UTC())
	if err != nil {
		return fmt.Errorf("ledger: mark %s of source %s acknowledged: %w", storedName(f.Path), source, interpretError(err))
	}
	return nil
}

// DoneSourceFileByHash returns what became of the same bytes at the same path of
// the source before (a file touched, or uploaded again over itself with after:
// leave), and false when they were never done there.
func (l *Ledger) DoneSourceFileByHash(ctx context.Context, source, path string, sha256 []byte) (SeenFile, bool, error) {
	var s SeenFile
	var state, status string
	err := l.pool.QueryRow(ctx, `
		SELECT state, status, coalesce(file_id, 0) FROM source_files
		WHERE source = $1 AND sha256 = $2 AND path = $3 AND state IN ('DONE', 'ACKED')
		ORDER BY done_at DESC LIMIT 1`, source, sha256, storedName(path)).Scan(&state, &status, &s.FileID)
	if errors.Is(err, pgx.ErrNoRows) {
		return SeenFile{}, false, nil
	}
	if err != nil {
		return SeenFile{}, false, fmt.Errorf("ledger: look up source %s by hash: %w", source, interpretError(err))
	}
	s.State, s.Status = SourceFileState(state), outcome.FileStatus(status)
	return s, true, nil
}

// ErrSourceBusy is returned by LockSource when another poller holds the source.
var ErrSourceBusy = errors.New("the source is being polled by another process")

// LockSource takes a session lock on a source so that one poller at a time, on one
// replica or many, lists and takes its files. unlock releases it. Two source names
// that hash alike share a lock: at worst one waits for the other's next poll.
func (l *Ledger) LockSource(ctx context.Context, source string) (unlock func(), err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: lock source %s: %w", source, interpretError(err))
	}
	const lockClass = 0x7273 // "rs": returnsd's source lock namespace
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", lockClass, source).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("ledger: lock source %s: %w", source, interpretError(err))
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("source %s: %w", source, ErrSourceBusy)
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", lockClass, source); err != nil {
			// The lock dies with the session: drop the connection rather than return it locked.
			conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// SourceHealth is how a source's polls have gone lately.
type SourceHealth struct {
	Failures     int       // consecutive failed polls; 0 when the last one succeeded
	LastError    string    // of the last failed poll
	FailingSince time.Time // the first failure of the current run; zero when healthy
	NextAttempt  time.Time // no poll before this (backoff); zero when healthy
	LastSuccess  time.Time
}

// SourceHealth reads a source's health; a source never polled is healthy.
func (l *Ledger) SourceHealth(ctx context.Context, source string) (SourceHealth, error) {
	var h SourceHealth
	// A NULL time reads as the zero time.
	epoch := time.Time{}
	err := l.pool.QueryRow(ctx, `SELECT failures, coalesce(last_error, ''), coalesce(failing_since, $2),
			coalesce(next_attempt_at, $2), coalesce(last_success_at, $2)
		FROM source_health WHERE source = $1`, source, epoch).
		Scan(&h.Failures, &h.LastError, &h.FailingSince, &h.NextAttempt, &h.LastSuccess)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("ledger: health of source %s: %w", source, interpretError(err))
	}
	return h, nil
}

// RecordPollFailure counts a failed poll of a source at the clock reading at and
// backs the source off for backoff(failures) (failures counting this one).
func (l *Ledger) RecordPollFailure(ctx context.Context, source string, at time.Time, pollErr string,
	backoff func(failures int) time.Duration) (SourceHealth, error) {
	var failures int
	err := l.pool.QueryRow(ctx, `
		INSERT INTO source_health (source, failures, last_error, failing_since, last_failure_at)
		VALUES ($1, 1, $2, $3, $3)
		ON CONFLICT (source) DO UPDATE SET failures = source_health.failures + 1, last_error = $2,
			failing_since = coalesce(source_health.failing_since, $3), last_failure_at = $3
		RETURNING failures`, source, safetext.Printable(pollErr), at).Scan(&failures)
	if err == nil {
		_, err = l.pool.Exec(ctx, "UPDATE source_health SET next_attempt_at = $2 WHERE source = $1", source, at.Add(backoff(failures)))
	}
	if err != nil {
		return SourceHealth{}, fmt.Errorf("ledger: record failed poll of %s: %w", source, interpretError(err))
	}
	return l.SourceHealth(ctx, source)
}

// RecordPollSuccess marks a source healthy again.
func (l *Ledger) RecordPollSuccess(ctx context.Context, source string, at time.Time) error {
	_, err := l.pool.Exec(ctx, `
		INSERT INTO source_health (source, last_success_at) VALUES ($1, $2)
		ON CONFLICT (source) DO UPDATE SET failures = 0, failing_since = NULL, next_attempt_at = NULL,
			last_success_at = $2`, source, at)
	if err != nil {
		return fmt.Errorf("ledger: record poll of %s: %w", source, interpretError(err))
	}
	return nil
}

// SourceHealthOf is one source's row of SourcesHealth.
type SourceHealthOf struct {
	Source string
	SourceHealth
}

// SourcesHealth reads the health of every source ever polled, by name.
func (l *Ledger) SourcesHealth(ctx context.Context) ([]SourceHealthOf, error) {
	epoch := time.Time{}
	rows, err := l.pool.Query(ctx, `SELECT source, failures, coalesce(last_error, ''), coalesce(failing_since, $1),
			coalesce(next_attempt_at, $1), coalesce(last_success_at, $1)
		FROM source_health ORDER BY source`, epoch)
	if err != nil {
		return nil, fmt.Errorf("ledger: health of the sources: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceHealthOf, error) {
		var h SourceHealthOf
		err := r.Scan(&h.Source, &h.Failures, &h.LastError, &h.FailingSince, &h.NextAttempt, &h.LastSuccess)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: health of the sources: %w", interpretError(err))
	}
	return out, nil
}

// JobCount is how many jobs of one queue are in one state.
type JobCount struct {
	Queue string
	State string
	Count int
}

// JobCounts counts the job queue's jobs that are not finished, by queue and
// state (available, scheduled, running, retryable, pending): its depth.
func (l *Ledger) JobCounts(ctx context.Context) ([]JobCount, error) {
	rows, err := l.pool.Query(ctx, `SELECT queue, state::text, count(*) FROM river_job
		WHERE state NOT IN ('completed', 'cancelled', 'discarded') GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("ledger: job counts: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[JobCount])
	if err != nil {
		return nil, fmt.Errorf("ledger: job counts: %w", interpretError(err))
	}
	return out, nil
}
