package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/returnsd/returnsd/ingest/sources"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
	"github.com/returnsd/returnsd/report"
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

// AutoApproveArgs is a scheduled run of inquiry auto-approval.
type AutoApproveArgs struct {
	RunAt time.Time `json:"run_at,omitzero"`
}

func (AutoApproveArgs) Kind() string { return "auto_approve" }

func (AutoApproveArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: queueLedger} }

// NotifyArgs is a scheduled run of the partners' mail about their inquiries.
type NotifyArgs struct {
	RunAt time.Time `json:"run_at,omitzero"`
}

func (NotifyArgs) Kind() string { return "notify" }

// InsertOpts: network-bound like a poll. A run that fails is not retried by
// the queue: the notices it left are the next run's, a minute later.
func (NotifyArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queuePoll, MaxAttempts: 1}
}

// ReportArgs is a scheduled run of the daily report: the report of the day
// before RunAt's day in the report's zone, mailed to its recipients.
type ReportArgs struct {
	RunAt time.Time `json:"run_at,omitzero"`
}

func (ReportArgs) Kind() string { return "daily_report" }

// InsertOpts: a failed send is retried with River's backoff, ten attempts
// over about seven hours, still within the day the report is for.
func (ReportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueLedger, MaxAttempts: 10}
}

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
		if a.File.Actor != "" {
			continue // a rerun, asked for by someone: its own answer job answers it
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
	log := runLogger(w.d.jobLogger(job.JobRow), job.Args.RunAt)
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
	log := runLogger(w.d.jobLogger(job.JobRow), job.Args.RunAt)
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

type autoApproveWorker struct {
	river.WorkerDefaults[AutoApproveArgs]
	d *Daemon
}

func (w *autoApproveWorker) Timeout(*river.Job[AutoApproveArgs]) time.Duration { return -1 }

func (w *autoApproveWorker) Work(ctx context.Context, job *river.Job[AutoApproveArgs]) error {
	log := runLogger(w.d.jobLogger(job.JobRow), job.Args.RunAt)
	for _, brand := range w.d.cfg.AutoApproveBrands() {
		res, err := w.d.ledger.AutoApproveInquiries(ctx, brand, w.d.now())
		if err != nil {
			return err
		}
		if res.Approved+res.Capped+res.Tracked > 0 {
			log.Info("inquiries auto-approved", "brand", brand, "approved", res.Approved, "payout", res.Payout.String(),
				"locked", res.Locked, "paid", res.Paid, "delayed", res.Delayed,
				"over_monthly_cap", res.Capped, "tracked_meanwhile", res.Tracked)
		}
	}
	return nil
}

type notifyWorker struct {
	river.WorkerDefaults[NotifyArgs]
	d *Daemon
}

// Timeout bounds a run: every network operation has its own deadline.
func (w *notifyWorker) Timeout(*river.Job[NotifyArgs]) time.Duration { return time.Hour }

func (w *notifyWorker) Work(ctx context.Context, job *river.Job[NotifyArgs]) error {
	log := runLogger(w.d.jobLogger(job.JobRow), job.Args.RunAt)
	sum, err := w.d.ledger.DeliverInquiryNotices(ctx, ledger.DeliverParams{At: w.d.now(), Send: w.d.partners.Send})
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		log.Warn("partners' mail failed; tried again on a later run", "sent", sum.Sent, "pending", sum.Pending,
			"error", sum.LastError)
	} else if sum.Sent > 0 {
		log.Info("partners told about their inquiries", "sent", sum.Sent, "pending", sum.Pending)
	}
	return nil
}

type reportWorker struct {
	river.WorkerDefaults[ReportArgs]
	d    *Daemon
	mail report.Sender
}

// Timeout bounds a run: building the report takes well under a second, and
// each network operation of the mail has the smtp section's timeout.
func (w *reportWorker) Timeout(*river.Job[ReportArgs]) time.Duration { return 15 * time.Minute }

func (w *reportWorker) Work(ctx context.Context, job *river.Job[ReportArgs]) error {
	d := w.d
	loc := d.cfg.Report.Location()
	// The day follows the scheduled run, not the clock, so a retry after
	// midnight still mails the day it was for.
	at := job.Args.RunAt
	if at.IsZero() {
		at = d.now()
	}
	day := report.Yesterday(at, loc)
	log := runLogger(d.jobLogger(job.JobRow), job.Args.RunAt).With("day", day.String(), "timezone", loc.String())
	res, err := report.Deliver(ctx, d.ledger, w.mail, report.DeliverParams{Day: day, Location: loc,
		Recipients: d.cfg.Report.Recipients, From: d.cfg.SMTP.From, Now: d.now(),
		SourceBrands: report.SourceBrands(d.cfg), By: fmt.Sprintf("%s job %d", job.Kind, job.ID)})
	switch {
	case errors.Is(err, ledger.ErrDeliveryBusy):
		log.Debug("another replica is mailing this report; looked at again in a minute")
		return river.JobSnooze(time.Minute)
	case err != nil:
		return err // the queue retries
	case res.Sent:
		log.Info("daily report mailed", "recipients", len(d.cfg.Report.Recipients), "message_id", res.MessageID)
	default:
		log.Info("daily report was mailed before; not again", "sent_at", res.SentAt, "message_id", res.MessageID)
	}
	return nil
}

// runLogger names the scheduled run a job makes; an @every schedule's runs have no name.
func runLogger(l *slog.Logger, runAt time.Time) *slog.Logger {
	if runAt.IsZero() {
		return l
	}
	return l.With("run_at", runAt)
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
