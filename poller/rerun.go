package poller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
)

// Rerun is a file Reprocess or RetryRejected made: a new received file,
// linked to the file it runs again, applied in its brand's order and
// answered to the brand through that file's source like any.
type Rerun struct {
	// File is the new file as it stands: RECEIVED while its jobs are to
	// apply and answer it (Enqueue), else finished (applied here).
	File ledger.ReceivedFile
	Of   int64 // the file it runs again
	Rows int   // a retry's rows
	// Result is how it ended, when it was applied here (no Enqueue).
	Result pipeline.Result
	// AnswerErr, when it was applied here, says why its answer did not reach
	// the brand; Answer tries again.
	AnswerErr error
}

// ErrNotFinished is Answer's error for a file not applied yet.
var ErrNotFinished = errors.New("the file is not applied yet")

// ErrSourceGone is Answer's error for a file whose source is no longer
// configured: there is nowhere to answer it.
var ErrSourceGone = errors.New("its source is no longer configured")

// Reprocess runs a quarantined file again, once ops mended its brand's
// config: its kept bytes as a new file linked to it (pipeline.Reprocess),
// applied under the brand's config as it is then, and answered (its result,
// or a new receipt) through the file's source. A reprocess quarantined again
// is reprocessed as its original. actor says who asks ("cli:alice",
// "web:bob"). What cannot be reprocessed is a *ledger.RefusedError (see
// ledger/rerun.go), and so is a file given to the command line: the person
// who has it applies it again.
//
// With Enqueue, the file is applied and answered by the daemon's jobs,
// enqueued in the transaction that makes it; otherwise here and now.
func (p *Poller) Reprocess(ctx context.Context, fileID int64, actor string) (Rerun, error) {
	if strings.TrimSpace(actor) == "" {
		return Rerun{}, errors.New("reprocess: say who asks (the actor)")
	}
	file, err := p.Ledger.ReceivedFile(ctx, fileID)
	if err != nil {
		return Rerun{}, err
	}
	if file.ReprocessOf != 0 {
		if file, err = p.Ledger.ReceivedFile(ctx, file.ReprocessOf); err != nil {
			return Rerun{}, err
		}
	}
	res, err := p.Files.Reprocess(ctx, pipeline.ReprocessParams{File: file, Actor: actor, Then: p.enqueueRerun()})
	if err != nil {
		return Rerun{}, err
	}
	return p.finishRerun(ctx, res.FileID, file.ID, 0)
}

// RetryRejected runs again the rows of a completed file that were rejected
// ACTION_NOT_FOUND or INQUIRY_NOT_FOUND and that no earlier retry of it
// applied (pipeline.RetryRejected), once the missing actions or inquiries
// came: a new file of those rows, linked to the file, with its own result
// answered through the file's source (a file given to the command line has
// none: its result is downloaded). A retry's retry is its original's, and
// so is a DUPLICATE_FILE's (the brand sent the file again, in vain). actor
// says who asks. What cannot be retried is a *ledger.RefusedError.
//
// With Enqueue, the file is applied and answered by the daemon's jobs,
// enqueued in the transaction that makes it; otherwise here and now.
func (p *Poller) RetryRejected(ctx context.Context, fileID int64, actor string) (Rerun, error) {
	if strings.TrimSpace(actor) == "" {
		return Rerun{}, errors.New("retry: say who asks (the actor)")
	}
	file, err := p.Ledger.ReceivedFile(ctx, fileID)
	if err != nil {
		return Rerun{}, err
	}
	// A retry's retry is its original's; so is that of a DUPLICATE_FILE (the
	// brand sent the file again, to no effect): its rows are the original's.
	if file.Status == outcome.DuplicateFile && file.DuplicateOf != 0 {
		if file, err = p.Ledger.ReceivedFile(ctx, file.DuplicateOf); err != nil {
			return Rerun{}, err
		}
	}
	if file.RetryOf != 0 {
		if file, err = p.Ledger.ReceivedFile(ctx, file.RetryOf); err != nil {
			return Rerun{}, err
		}
	}
	b, err := p.Config.Brand(file.Brand)
	if err != nil {
		return Rerun{}, err
	}
	res, err := p.Files.RetryRejected(ctx, pipeline.RetryParams{File: file, Format: pipeline.Format(b), Actor: actor,
		Then: p.enqueueRerun()})
	if err != nil {
		return Rerun{}, err
	}
	return p.finishRerun(ctx, res.FileID, file.ID, res.Rows)
}

// enqueueRerun is the Then of a rerun with the daemon's jobs: its files to
// apply, and its answer.
func (p *Poller) enqueueRerun() func(ctx context.Context, tx pgx.Tx, r ledger.Received) error {
	if p.Enqueue == nil {
		return nil
	}
	return func(ctx context.Context, tx pgx.Tx, r ledger.Received) error {
		for _, w := range append([]ledger.Received{r}, r.Children...) {
			if w.Status == outcome.Received {
				if err := p.Enqueue(ctx, tx, w.FileID); err != nil {
					return err
				}
			}
		}
		if p.EnqueueAnswer == nil {
			return errors.New("poller: Enqueue without EnqueueAnswer: a rerun would never be answered")
		}
		return p.EnqueueAnswer(ctx, tx, r.FileID)
	}
}

// finishRerun applies and answers a rerun here, unless jobs do.
func (p *Poller) finishRerun(ctx context.Context, fileID, of int64, rows int) (Rerun, error) {
	r := Rerun{Of: of, Rows: rows}
	file, err := p.Ledger.ReceivedFile(ctx, fileID)
	if err != nil {
		return r, err
	}
	r.File = file
	if p.Enqueue != nil {
		return r, nil
	}
	answered, err := p.answered(ctx, file)
	if err != nil {
		return r, err
	}
	var last int64
	for _, a := range answered {
		if a.Status == outcome.Received {
			last = max(last, a.ID)
		}
	}
	if last != 0 {
		// Its brand's files that came before it are applied first, as always.
		if _, err := p.ApplyWaiting(ctx, last); err != nil {
			return r, err
		}
		if answered, err = p.answered(ctx, file); err != nil {
			return r, err
		}
		if r.File, err = p.Ledger.ReceivedFile(ctx, fileID); err != nil {
			return r, err
		}
	}
	if r.Result, err = p.describe(ctx, r.File, answered); err != nil {
		return r, err
	}
	r.AnswerErr = p.Answer(ctx, fileID)
	if r.File, err = p.Ledger.ReceivedFile(ctx, fileID); err != nil {
		return r, err
	}
	return r, nil
}

// Answer sends the brand the answer to a finished file (its result, or its
// files' for an archive split, or its receipt) through the file's source,
// told whom to answer by what was recorded as the file was received: for a
// file no source lists now, a rerun, this is how it is answered (the
// daemon's answer job calls it). A file answered before is not answered
// again. A file given to the command line has no source to answer through:
// it is marked answered, its result downloaded (returnsd files download).
// ErrNotFinished: not applied yet.
func (p *Poller) Answer(ctx context.Context, fileID int64) error {
	file, err := p.Ledger.ReceivedFile(ctx, fileID)
	if err != nil {
		return err
	}
	if !file.AnsweredAt.IsZero() {
		return nil
	}
	answered, err := p.answered(ctx, file)
	if err != nil {
		return err
	}
	for _, a := range answered {
		if a.Status == outcome.Received {
			return fmt.Errorf("file %d: %w", a.ID, ErrNotFinished)
		}
	}
	if file.Source == "cli" {
		return p.Ledger.MarkAnswered(ctx, file.ID)
	}
	sc, err := p.Config.Source(file.Source)
	if err != nil {
		return fmt.Errorf("answer file %d: %w: %w", file.ID, ErrSourceGone, err)
	}
	if err := p.Config.SourceUnusable(sc); err != nil {
		return fmt.Errorf("answer file %d: %w", file.ID, err)
	}
	if p.OpenSource == nil {
		return fmt.Errorf("answer file %d: poller: no OpenSource", file.ID)
	}
	src, err := p.OpenSource(sc)
	if err != nil {
		return fmt.Errorf("answer file %d: %w", file.ID, err)
	}
	defer src.Close()
	if err := p.answer(ctx, src, file, answered, nil); err != nil {
		return fmt.Errorf("answer file %d: %w", file.ID, err)
	}
	return nil
}
