package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/sources"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/poller"
)

// AnswerArgs is the answer to one file that no source lists: a rerun
// (poller.Reprocess, poller.RetryRejected). A file a source lists is
// answered by the poll that acknowledges it; a rerun has no copy to
// acknowledge, so a job of its own, enqueued with the file, answers it once
// it is applied, through the same poller code (Poller.Answer) and the
// reply recorded with the file.
type AnswerArgs struct {
	FileID int64 `json:"file_id"`
}

func (AnswerArgs) Kind() string { return "answer_file" }

func (AnswerArgs) InsertOpts() river.InsertOpts {
	// Network-bound, like a poll; retried with the queue's backoff when the
	// source or the mail server is down.
	return river.InsertOpts{Queue: queuePoll, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// answerWait is how long an answer job waits for its file to be applied
// before it looks again.
const answerWait = 2 * time.Second

type answerWorker struct {
	river.WorkerDefaults[AnswerArgs]
	d *Daemon
}

func (w *answerWorker) Timeout(*river.Job[AnswerArgs]) time.Duration { return 10 * time.Minute }

func (w *answerWorker) Work(ctx context.Context, job *river.Job[AnswerArgs]) error {
	log := w.d.jobLogger(job.JobRow).With("file_id", job.Args.FileID)
	err := w.d.poller.Answer(ctx, job.Args.FileID)
	switch {
	case err == nil:
		log.Info("file answered")
		return nil
	case errors.Is(err, poller.ErrNotFinished):
		// Its apply job runs it in its brand's order; snoozing does not count
		// as an attempt.
		return river.JobSnooze(answerWait)
	case errors.Is(err, ledger.ErrNoFile), errors.Is(err, poller.ErrSourceGone):
		log.Warn("the file cannot be answered: given up", "error", err)
		return river.JobCancel(err)
	}
	log.Warn("answering the file failed; retried", "error", err)
	return err
}

// enqueueAnswer is the poller's EnqueueAnswer: the job that answers a rerun,
// in the transaction that makes it.
func (d *Daemon) enqueueAnswer(ctx context.Context, tx pgx.Tx, fileID int64) error {
	if _, err := d.client.InsertTx(ctx, tx, AnswerArgs{FileID: fileID}, nil); err != nil {
		return fmt.Errorf("enqueue the answer to file %d: %w", fileID, err)
	}
	return nil
}

// openSource is the poller's OpenSource: results of mail sources go out
// through the config's SMTP server.
func (d *Daemon) openSource(sc *config.Source) (ingest.Source, error) {
	return sources.Open(sc, &d.cfg.SMTP)
}

// Reprocess runs a quarantined file again (poller.Reprocess) with the
// daemon's jobs: the new file's apply and answer jobs are enqueued in the
// transaction that makes it, and any replica runs them. It returns the new
// file, RECEIVED. The ops pages call it, with actor "web:<user>".
func (d *Daemon) Reprocess(ctx context.Context, fileID int64, actor string) (poller.Rerun, error) {
	return d.poller.Reprocess(ctx, fileID, actor)
}

// RetryRejected retries a completed file's rows rejected for want of an
// action or an inquiry (poller.RetryRejected) with the daemon's jobs, as
// Reprocess does.
func (d *Daemon) RetryRejected(ctx context.Context, fileID int64, actor string) (poller.Rerun, error) {
	return d.poller.RetryRejected(ctx, fileID, actor)
}
