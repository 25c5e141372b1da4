package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/returnsd/returnsd/ingest/sources"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

// PollArgs is a poll of one source: a scheduled run, or a delivery of the
// results of files applied since (DeliverOnly).
type PollArgs struct {
	Source      string    `json:"source"`
	RunAt       time.Time `json:"run_at,omitzero"` // the scheduled run, or the delivery window's end
	DeliverOnly bool      `json:"deliver_only,omitempty"`
}

func (PollArgs) Kind() string { return "poll" }

func (PollArgs) InsertOpts() river.InsertOpts {
	// A poll that fails is not retried by the queue: the source's backoff and
	// its next run decide when it is polled again.
	return river.InsertOpts{Queue: queuePoll, MaxAttempts: 5}
}

// ApplyArgs is the application of one received file (and of its brand's
// older files still waiting).
type ApplyArgs struct {
	FileID int64 `json:"file_id"`
}

func (ApplyArgs) Kind() string { return "apply_file" }

func (ApplyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueFiles, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// LifecycleArgs is a scheduled run of the lifecycle: lock and pay what is due.
type LifecycleArgs struct {
	RunAt time.Time `json:"run_at,omitzero"`
}

func (LifecycleArgs) Kind() string { return "lifecycle" }

func (LifecycleArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: queueLedger} }

// AutoResolveArgs is a scheduled run of inquiry auto-resolution.
type AutoResolveArgs struct {
	RunAt time.Time `json:"run_at,omitzero"`
}

func (AutoResolveArgs) Kind() string { return "auto_resolve" }

func (AutoResolveArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: queueLedger} }

// jobLogger is the daemon's logger with the job on every line.
func (d *Daemon) jobLogger(job *rivertype.JobRow) *slog.Logger {
	return d.log.With("job", job.Kind, "job_id", job.ID, "attempt", job.Attempt)
}

type pollWorker struct {
	river.WorkerDefaults[PollArgs]
	d *Daemon
}

func (w *pollWorker) Work(ctx context.Context, job *river.Job[PollArgs]) error {
	d := w.d
	log := d.jobLogger(job.JobRow).With("source", job.Args.Source)
	sc, err := d.cfg.Source(job.Args.Source)
	if err != nil {
		log.Warn("poll of a source no longer configured: dropped")
		return nil
	}
	if err := d.cfg.SourceUnusable(sc); err != nil {
		log.Warn("source skipped: it cannot be used here", "error", err)
		return nil
	}
	src, err := sources.Open(sc, &d.cfg.SMTP)
	if err != nil {
		return river.JobCancel(err)
	}
	defer src.Close()
	began := time.Now()
	rep, err := d.poller.PollOnce(ctx, src, sc, poller.PollOptions{DeliverOnly: job.Args.DeliverOnly})
	d.metrics.poll(sc.Name, err)
	for _, f := range rep.Files {
		attrs := []any{"file", f.Name, "status", f.Status}
		if f.Result.FileID != 0 {
			attrs = append(attrs, "file_id", f.Result.FileID)
		}
		switch {
		case f.Err != nil:
			log.Warn("file not taken; tried again next poll", append(attrs, "error", f.Err)...)
		case f.AckErr != nil:
			log.Warn("file done but not yet acknowledged; acknowledged next poll", append(attrs, "error", f.AckErr)...)
		case f.Status == string(poller.StatusWaiting) || f.Status == string(poller.StatusDeferred):
			log.Debug("file left for a later poll", attrs...)
		default:
			log.Info("file", attrs...)
		}
	}
	var off *poller.BackingOffError
	switch {
	case err == nil:
		log.Debug("polled", "listed", rep.Listed, "files", len(rep.Files), "took", time.Since(began))
		return nil
	case errors.Is(err, ledger.ErrSourceBusy):
		if job.Args.DeliverOnly {
			// The poll under way may have passed the files this one is for.
			return river.JobSnooze(deliverEvery)
		}
		log.Debug("another replica is polling the source; this run is left to it")
		return nil
	case errors.As(err, &off):
		log.Debug("source backed off; not polled", "until", off.Until)
		return nil
	case errors.Is(err, ledger.ErrTransient):
		return err // the database: the queue retries
	}
	// The source or some of its files failed: recorded in the ledger, logged
	// above, tried again by the next poll.
	log.Warn("poll failed", "error", err)
	return nil
}

type applyWorker struct {
	river.WorkerDefaults[ApplyArgs]
	d *Daemon
}

func (w *applyWorker) Work(ctx context.Context, job *river.Job[ApplyArgs]) error {
	d := w.d
	log := d.jobLogger(job.JobRow).With("file_id", job.Args.FileID)
	applied, err := d.poller.ApplyWaiting(ctx, job.Args.FileID)
	var delivered []string
	for _, a := range applied {
		flog := log.With("brand", a.File.Brand, "source", a.File.Source, "file", a.File.Name, "file_id", a.File.ID)
		d.metrics.applied(a)
		if a.Result.Status == outcome.Quarantined {
			flog.Warn("file quarantined", "code", a.Result.Code, "reason", a.Result.Reason)
		} else {
			s := a.Result.Summary
			flog.Info("file applied", "status", a.Result.Status, "rows", s.Rows, "applied", s.Applied,
				"rejected", s.Rejected, "duplicate", s.Duplicate)
		}
		if !slices.Contains(delivered, a.File.Source) {
			delivered = append(delivered, a.File.Source)
			if derr := d.enqueueDelivery(ctx, a.File.Source); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}
	if err != nil {
		log.Warn("applying failed; retried", "error", err)
	}
	return err
}

type lifecycleWorker struct {
	river.WorkerDefaults[LifecycleArgs]
	d *Daemon
}

func (w *lifecycleWorker) Work(ctx context.Context, job *river.Job[LifecycleArgs]) error {
	log := w.d.jobLogger(job.JobRow).With("run_at", job.Args.RunAt)
	sum, err := w.d.ledger.RunLifecycle(ctx, w.d.now())
	if err != nil {
		return err
	}
	for _, b := range sum.Brands {
		if b.Locked+b.Paid+b.Delayed+b.Released > 0 {
			log.Info("lifecycle", "brand", b.Brand, "locked", b.Locked, "paid", b.Paid, "delayed", b.Delayed,
				"released", b.Released, "debited", b.Debited.String(), "balance", b.Balance.String())
		}
	}
	return nil
}

type autoResolveWorker struct {
	river.WorkerDefaults[AutoResolveArgs]
	d *Daemon
}

func (w *autoResolveWorker) Work(ctx context.Context, job *river.Job[AutoResolveArgs]) error {
	log := w.d.jobLogger(job.JobRow).With("run_at", job.Args.RunAt)
	for _, brand := range w.d.cfg.AutoResolveBrands() {
		res, err := w.d.ledger.AutoResolveInquiries(ctx, brand, w.d.now())
		if err != nil {
			return err
		}
		if res.Tracked+res.Other > 0 {
			log.Info("inquiries auto-resolved", "brand", brand, "tracked_same_partner", res.Tracked, "credited_to_another", res.Other)
		}
	}
	return nil
}

// errorHandler logs what a job returned or how it panicked; the queue retries it.
type errorHandler struct{ log *slog.Logger }

func (h *errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.log.WarnContext(ctx, "job failed; retried", "job", job.Kind, "job_id", job.ID, "attempt", job.Attempt, "error", err)
	return nil
}

func (h *errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	h.log.ErrorContext(ctx, "job panicked; retried", "job", job.Kind, "job_id", job.ID, "attempt", job.Attempt,
		"panic", panicVal, "trace", trace)
	return nil
}

// riverLogger is the daemon's logger for River's own messages, warnings and
// worse only: River's info lines are about its inner workings.
func riverLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{Handler: l.Handler(), min: slog.LevelWarn}).With("component", "river")
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
