// Package poller takes a source's files through returnsd: it lists the source,
// takes the files that are stable and new, keeps their bytes in the ledger,
// has them applied (in the order each brand sent them), delivers each file's
// result to the brand and acknowledges the source's copy.
//
// It keeps no state of its own between polls: the ledger's source_files table
// is its memory, so a restart, or another replica, carries on where it
// stopped. What it needs of the ledger and the pipeline are the small
// interfaces Ledger and Files; the sources are ingest.Sources.
package poller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// Ledger is what the poller keeps in the ledger: its memory of each source and
// the files received from it.
type Ledger interface {
	LockSource(ctx context.Context, source string) (unlock func(), err error)
	SourceHealth(ctx context.Context, source string) (ledger.SourceHealth, error)
	RecordPollFailure(ctx context.Context, source string, at time.Time, pollErr string,
		backoff func(failures int) time.Duration) (ledger.SourceHealth, error)
	RecordPollSuccess(ctx context.Context, source string, at time.Time) error
	ObserveSourceFiles(ctx context.Context, source string, files []ledger.ListedFile) ([]ledger.SeenFile, error)
	DoneSourceFileByHash(ctx context.Context, source, path string, sha256 []byte) (ledger.SeenFile, bool, error)
	MarkSourceFileDone(ctx context.Context, p ledger.SourceFileDoneParams) error
	MarkSourceFileAcked(ctx context.Context, source string, f ledger.ListedFile) error
	ReceivedFile(ctx context.Context, id int64) (ledger.ReceivedFile, error)
	WaitingFiles(ctx context.Context, upTo int64) ([]ledger.ReceivedFile, error)
	ChildFiles(ctx context.Context, archive int64) ([]ledger.ReceivedFile, error)
	MarkAnswered(ctx context.Context, fileID int64) error
}

// Files is what the poller asks of the file pipeline.
type Files interface {
	Receive(ctx context.Context, p pipeline.ReceiveParams) (pipeline.Result, error)
	ApplyReceived(ctx context.Context, f ledger.ReceivedFile, p pipeline.ApplyParams) (pipeline.Result, error)
	Describe(ctx context.Context, f ledger.ReceivedFile) (pipeline.Result, error)
	WriteResult(ctx context.Context, f ledger.ReceivedFile, format processors.Format, w pipeline.ResultFile) (bool, error)
	WriteReceipt(f ledger.ReceivedFile, format processors.Format, w io.Writer) error
	Reprocess(ctx context.Context, p pipeline.ReprocessParams) (pipeline.Result, error)
	RetryRejected(ctx context.Context, p pipeline.RetryParams) (pipeline.Retry, error)
}

var (
	_ Ledger = (*ledger.Ledger)(nil)
	_ Files  = (*pipeline.Pipeline)(nil)
)

// Defaults of the Poller's zero fields.
const (
	DefaultMaxFilesPerPoll = 100
	DefaultMaxBytesPerPoll = 1 << 30 // 1 GiB
)

// Poller takes sources' files through the pipeline.
type Poller struct {
	Ledger Ledger
	Files  Files
	// Config gives each source its brand and the brand's file format. It must
	// have had WithDefaults and Validate.
	Config *config.Config
	// SpoolDir is where fetched files are staged; default Config.SpoolDir.
	SpoolDir string
	// MaxFilesPerPoll bounds the files taken in one poll; the rest wait for the
	// next. Default DefaultMaxFilesPerPoll.
	MaxFilesPerPoll int
	// MaxBytesPerPoll bounds the bytes fetched in one poll (by the listed sizes);
	// a single file larger than it is still taken, alone. Default DefaultMaxBytesPerPoll.
	MaxBytesPerPoll int64
	Logger          *slog.Logger
	// IgnoreBackoff polls a source even while it is backed off (see Backoff):
	// an operator asking for a poll now gets one.
	IgnoreBackoff bool
	// Enqueue, when set, hands each file received to a job of its own, in the
	// transaction that receives it: the daemon's, so that any replica applies
	// it and a large file holds up no other source. The job calls ApplyWaiting,
	// and a later poll delivers the result. A poll that finds a file still
	// waiting enqueues it again, with tx nil: a job queued or running already
	// makes that a no-op. When nil, PollOnce applies and delivers each file
	// itself (the command line's poll).
	Enqueue func(ctx context.Context, tx pgx.Tx, fileID int64) error
	// EnqueueAnswer, when set (with Enqueue), hands the answer of a file no
	// source lists (a rerun: Reprocess, RetryRejected) to a job of its own,
	// in the transaction that makes the file: the job calls Answer once the
	// file is applied. When nil, a rerun is applied and answered at once.
	EnqueueAnswer func(ctx context.Context, tx pgx.Tx, fileID int64) error
	// OpenSource opens a configured source for Answer (sources.Open, in the
	// daemon and the command line). Answer fails without it.
	OpenSource func(sc *config.Source) (ingest.Source, error)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done (the settle time between two listings
	// of one poll); default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Backoff is how long a source is left alone after its failures-th failed poll
// in a row (its listing failed: down, refusing us, the folder gone): a minute,
// doubling with each failure, at most an hour. Other sources are not held up.
func Backoff(failures int) time.Duration {
	if failures < 1 {
		return 0
	}
	if failures > 7 {
		return time.Hour
	}
	return min(time.Minute<<(failures-1), time.Hour)
}

// BackingOffError is what PollOnce returns, without contacting the source, while
// a source that failed is backed off.
type BackingOffError struct {
	Source    string
	Until     time.Time
	Failures  int
	Since     time.Time
	LastError string
}

func (e *BackingOffError) Error() string {
	return fmt.Sprintf("source %s: backing off until %s after %d failed polls since %s; last error: %s",
		e.Source, e.Until.UTC().Format(time.RFC3339), e.Failures, e.Since.UTC().Format(time.RFC3339), e.LastError)
}

// FileStatus is what one poll did with one file.
type FileStatus string

const (
	// StatusWaiting: not stable yet (first listing, changed, younger than
	// min_age, or waiting for its done-marker).
	StatusWaiting FileStatus = "WAITING"
	// StatusDeferred: stable, but over this poll's file or byte budget.
	StatusDeferred FileStatus = "DEFERRED"
	// StatusQueued: received (its bytes kept); its own job applies it, and a
	// later poll delivers its result.
	StatusQueued FileStatus = "QUEUED"
	// StatusAcknowledged: done in an earlier poll (or the same bytes at the same
	// path were), acknowledged now.
	StatusAcknowledged FileStatus = "ACKNOWLEDGED"
	// StatusError: fetching, processing or delivering failed; retried next poll.
	StatusError FileStatus = "ERROR"
)

// FileReport is one file of a poll. Status is a pipeline outcome (COMPLETED,
// DUPLICATE_FILE, QUARANTINED) for a file finished now, else one of the
// FileStatus values.
type FileReport struct {
	Name   string
	Path   string
	Status string
	Result pipeline.Result // for finished files
	// AckErr is set when the outcome was delivered but the source's copy could
	// not be acknowledged; the next poll acknowledges it.
	AckErr error
	Err    error // for StatusError
}

// PollReport is what one poll did.
type PollReport struct {
	Source string
	Listed int // files listed that the name rules let through
	Files  []FileReport
}

// PollOptions change what one poll does.
type PollOptions struct {
	// DeliverOnly delivers the results of files applied since the last poll
	// and acknowledges them, but takes no new file: a poll asked for because
	// files were applied, outside the source's schedule.
	DeliverOnly bool
}

// PollOnce polls one source: it lists it, delivers the results of the files
// applied since the last poll and acknowledges them, and takes the stable files
// it has not done (at most MaxFilesPerPoll files and MaxBytesPerPoll bytes):
// each is fetched to the spool, its bytes kept in the ledger, and then either
// queued (Enqueue) or applied and delivered at once. A crash anywhere is
// harmless: the ledger's memory of the source says where each file stands.
//
// A file is stable when it was listed unchanged (size and time) twice, at
// least stable_wait apart, and is at least min_age old, by the server's clock
// or by how long returnsd has seen it (a server whose clock or time zone is off
// makes new files look old or in the future). A new file is listed again in
// the same poll after stable_wait, so it is taken in the poll that finds it.
//
// A source whose listing fails is backed off (Backoff; the ledger's
// source_health remembers it across restarts and replicas): until then PollOnce
// returns a *BackingOffError without contacting it, unless IgnoreBackoff.
//
// The error is non-nil when the source could not be polled at all (down, busy,
// backed off) or when some file failed; the report says which.
func (p *Poller) PollOnce(ctx context.Context, src ingest.Source, cfg *config.Source, opts PollOptions) (PollReport, error) {
	rep := PollReport{Source: cfg.Name}
	unlock, err := p.Ledger.LockSource(ctx, cfg.Name)
	if err != nil {
		return rep, err
	}
	defer unlock()

	if !p.IgnoreBackoff {
		h, err := p.Ledger.SourceHealth(ctx, cfg.Name)
		if err != nil {
			return rep, err
		}
		if now := p.clock(); now.Before(h.NextAttempt) {
			return rep, &BackingOffError{Source: cfg.Name, Until: h.NextAttempt, Failures: h.Failures,
				Since: h.FailingSince, LastError: h.LastError}
		}
	}
	candidates, markers, seen, err := p.list(ctx, src, cfg)
	if err != nil {
		return rep, err
	}
	rep.Listed = len(candidates)

	// Files acknowledged before and still listed (after: leave, or a message
	// whose other attachments are not done) are acknowledged again, quietly and
	// before any other: a source that moves a message once all its files are
	// done learns which are, even after a restart. For a folder with after:
	// leave it is a no-op.
	for i, f := range candidates {
		if s := seen[i]; s.State == ledger.SourceFileAcked {
			if err := src.Ack(ctx, f, disposition(s.Status)); err != nil {
				p.logger().WarnContext(ctx, "acknowledge again failed; retried next poll", "source", cfg.Name, "file", f.Name, "error", err)
			}
		}
	}

	if stableWait, _ := cfg.StableWait.Fixed(); !opts.DeliverOnly && cfg.DoneMarker == "" && stableWait > 0 &&
		slices.ContainsFunc(seen, func(s ledger.SeenFile) bool { return s.State == "NEW" }) {
		// Files listed for the first time: list again once they had time to
		// change, so a file that is whole is taken now, not a schedule later.
		if err := p.sleep(ctx, stableWait); err != nil {
			return rep, err
		}
		if candidates, markers, seen, err = p.list(ctx, src, cfg); err != nil {
			return rep, err
		}
		rep.Listed = len(candidates)
	}

	now := p.clock()
	minAge, _ := cfg.MinAge.Fixed()
	var taken int
	var takenBytes int64
	var errs []error
	report := func(fr FileReport) {
		if fr.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fr.Name, fr.Err))
		}
		rep.Files = append(rep.Files, fr)
	}
	for i, f := range candidates {
		s := seen[i]
		switch {
		case s.State == ledger.SourceFileAcked:
			continue // acknowledged again above
		case s.State == ledger.SourceFileDone:
			fr := FileReport{Name: f.Name, Path: f.Path, Status: string(StatusAcknowledged),
				Result: pipeline.Result{FileID: s.FileID, Status: s.Status}}
			fr.AckErr = p.ack(ctx, src, cfg, f, markers[f.Name], s.Status)
			report(fr)
			continue
		case s.State == ledger.SourceFileReceived:
			report(p.finish(ctx, src, cfg, f, markers[f.Name], s.FileID))
			continue
		case opts.DeliverOnly:
			continue
		}
		if !p.stable(f, s, cfg, minAge, now, markers) {
			report(FileReport{Name: f.Name, Path: f.Path, Status: string(StatusWaiting)})
			continue
		}
		if taken >= cmp.Or(p.MaxFilesPerPoll, DefaultMaxFilesPerPoll) ||
			(taken > 0 && takenBytes+f.Size > cmp.Or(p.MaxBytesPerPoll, DefaultMaxBytesPerPoll)) {
			report(FileReport{Name: f.Name, Path: f.Path, Status: string(StatusDeferred)})
			continue
		}
		taken++
		takenBytes += f.Size
		report(p.take(ctx, src, cfg, f, markers[f.Name]))
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("source %s: %w", cfg.Name, errors.Join(errs...))
	}
	return rep, nil
}

// list lists the source, records how it went, and returns the files the name
// rules let through with what the ledger knew of each, and the done-markers.
func (p *Poller) list(ctx context.Context, src ingest.Source, cfg *config.Source) ([]ingest.File, map[string]ingest.File, []ledger.SeenFile, error) {
	listed, err := src.List(ctx)
	if err != nil {
		err = fmt.Errorf("source %s: list: %w", cfg.Name, err)
		if ctx.Err() == nil { // a poll cut short by shutdown says nothing about the source
			h, herr := p.Ledger.RecordPollFailure(ctx, cfg.Name, p.clock(), err.Error(), Backoff)
			if herr != nil {
				return nil, nil, nil, errors.Join(err, herr)
			}
			p.logger().WarnContext(ctx, "source unreachable; backing off", "source", cfg.Name,
				"failures", h.Failures, "failing_since", h.FailingSince, "next_attempt", h.NextAttempt, "error", err)
		}
		return nil, nil, nil, err
	}
	if err := p.Ledger.RecordPollSuccess(ctx, cfg.Name, p.clock()); err != nil {
		return nil, nil, nil, err
	}
	candidates, markers := p.candidates(listed, cfg)
	keys := make([]ledger.ListedFile, len(candidates))
	for i, f := range candidates {
		keys[i] = listedKey(f)
	}
	seen, err := p.Ledger.ObserveSourceFiles(ctx, cfg.Name, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	return candidates, markers, seen, nil
}

// candidates keeps the files the name rules let through, oldest first, and
// returns the done-markers found by the name of the file they mark.
func (p *Poller) candidates(listed []ingest.File, cfg *config.Source) ([]ingest.File, map[string]ingest.File) {
	markers := map[string]ingest.File{}
	if cfg.DoneMarker != "" {
		for _, f := range listed {
			if name, ok := strings.CutSuffix(f.Name, cfg.DoneMarker); ok && name != "" {
				markers[name] = f
			}
		}
	}
	var out []ingest.File
	for _, f := range listed {
		wanted, why := ingest.Wanted(f.Name, cfg.Include, cfg.Exclude)
		switch {
		case !ingest.SafeName(f.Name):
			p.logger().Warn("file name refused: not a plain file name", "source", cfg.Name, "name", f.Name)
		case filename.IsOurs(f.Name):
		case cfg.DoneMarker != "" && strings.HasSuffix(f.Name, cfg.DoneMarker):
		case f.Refusal == nil && !wanted:
			// A refused message is taken whatever its name: it must be quarantined.
			p.logger().Debug("file not taken", "source", cfg.Name, "file", f.Name, "why", why)
		default:
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b ingest.File) int {
		return cmp.Or(a.ModTime.Compare(b.ModTime), strings.Compare(a.Path, b.Path))
	})
	return out, markers
}

// stable says whether a file may be taken: its done-marker exists, or (without
// done-markers) it was listed before with the same size and time and is at
// least min_age old by the server's clock or by how long we have seen it.
func (p *Poller) stable(f ingest.File, s ledger.SeenFile, cfg *config.Source, minAge time.Duration,
	now time.Time, markers map[string]ingest.File) bool {
	if cfg.DoneMarker != "" {
		_, ok := markers[f.Name]
		return ok
	}
	return s.State == ledger.SourceFileSeen && (now.Sub(f.ModTime) >= minAge || s.SeenFor >= minAge)
}

// take fetches one file, keeps its bytes in the ledger, and has it applied:
// by its own job (Enqueue), or here and now, and then delivers its result.
func (p *Poller) take(ctx context.Context, src ingest.Source, cfg *config.Source, f, marker ingest.File) FileReport {
	fr := FileReport{Name: f.Name, Path: f.Path, Status: string(StatusError)}
	brandID := cmp.Or(f.Brand, cfg.Brand)
	if f.Refusal != nil && brandID == "" {
		return p.refuseUnrouted(ctx, src, cfg, f)
	}
	if _, err := p.Config.Brand(brandID); err != nil {
		fr.Err = err
		return fr
	}
	spool := cmp.Or(p.SpoolDir, p.Config.SpoolDir)
	if err := os.MkdirAll(spool, 0o700); err != nil {
		fr.Err = fmt.Errorf("spool: %w", err)
		return fr
	}
	// The spool file is named by the poller, never by the remote name.
	tmp, err := os.CreateTemp(spool, cfg.Name+"-*.spool")
	if err != nil {
		fr.Err = fmt.Errorf("spool: %w", err)
		return fr
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum, err := p.fetch(ctx, src, f, tmp)
	if err != nil {
		fr.Err = err
		return fr
	}
	key := listedKey(f)

	// The same bytes at the same path were done before (the file was touched, or
	// uploaded again over itself with after: leave): acknowledge, do not process.
	if prev, ok, err := p.Ledger.DoneSourceFileByHash(ctx, cfg.Name, f.Path, sum); err != nil {
		fr.Err = err
		return fr
	} else if ok && len(sum) > 0 {
		err := p.Ledger.MarkSourceFileDone(ctx, ledger.SourceFileDoneParams{Source: cfg.Name, File: key,
			SHA256: sum, FileID: prev.FileID, Status: prev.Status})
		if err != nil {
			fr.Err = err
			return fr
		}
		fr.Status, fr.Err = string(StatusAcknowledged), nil
		fr.Result = pipeline.Result{FileID: prev.FileID, Status: prev.Status}
		fr.AckErr = p.ack(ctx, src, cfg, f, marker, prev.Status)
		return fr
	}

	rp := pipeline.ReceiveParams{Brand: brandID, Source: cfg.Name, Name: f.Name, Path: tmp.Name(),
		Listed: &ledger.SourceFileKey{Source: cfg.Name, File: key}, Split: true,
		Reply: ledger.Reply{Name: f.Name, To: f.Reply.To, InReplyTo: f.Reply.InReplyTo, NotTaken: f.Reply.NotTaken}}
	if f.Refusal != nil {
		rp.Refuse = &processors.FileError{Code: f.Refusal.Code, Reason: f.Refusal.Reason}
	}
	if p.Enqueue != nil {
		rp.Then = func(ctx context.Context, tx pgx.Tx, r ledger.Received) error {
			for _, w := range append([]ledger.Received{r}, r.Children...) {
				if w.Status == outcome.Received {
					if err := p.Enqueue(ctx, tx, w.FileID); err != nil {
						return err
					}
				}
			}
			return nil // nothing else to apply: answered below
		}
	}
	res, err := p.Files.Receive(ctx, rp)
	if err != nil {
		fr.Err = err
		return fr
	}
	waiting := res.Status == outcome.Received ||
		slices.ContainsFunc(res.Children, func(c ledger.Received) bool { return c.Status == outcome.Received })
	if waiting && p.Enqueue != nil {
		fr.Status, fr.Err, fr.Result = string(StatusQueued), nil, res
		return fr
	}
	return p.finish(ctx, src, cfg, f, marker, res.FileID)
}

// finish brings a received file to its end: applied (when no job does it),
// answered, and the source's copy acknowledged. An archive split into its files
// is answered with each file's own result.
func (p *Poller) finish(ctx context.Context, src ingest.Source, cfg *config.Source, f, marker ingest.File, fileID int64) FileReport {
	fr := FileReport{Name: f.Name, Path: f.Path, Status: string(StatusError)}
	file, err := p.Ledger.ReceivedFile(ctx, fileID)
	if err != nil {
		fr.Err = err
		return fr
	}
	answered, err := p.answered(ctx, file)
	if err != nil {
		fr.Err = err
		return fr
	}
	queued := false
	for i, a := range answered {
		if a.Status != outcome.Received {
			continue
		}
		if p.Enqueue != nil {
			// Its job is queued or running. Enqueueing again does nothing then,
			// and brings back a job that was given up after its last retry.
			if err := p.Enqueue(ctx, nil, a.ID); err != nil {
				fr.Err = err
				return fr
			}
			queued = true
			continue
		}
		if _, err := p.ApplyWaiting(ctx, a.ID); err != nil {
			fr.Err = err
			return fr
		}
		if answered[i], err = p.Ledger.ReceivedFile(ctx, a.ID); err != nil {
			fr.Err = err
			return fr
		}
		if a.ID == file.ID {
			file = answered[i]
		}
	}
	if queued {
		fr.Status, fr.Err = string(StatusQueued), nil
		fr.Result = pipeline.Result{FileID: fileID, Status: file.Status}
		return fr
	}
	if fr.Result, err = p.describe(ctx, file, answered); err != nil {
		fr.Err = err
		return fr
	}
	if err := p.answer(ctx, src, file, answered, &f); err != nil {
		fr.Err = err
		return fr
	}
	err = p.Ledger.MarkSourceFileDone(ctx, ledger.SourceFileDoneParams{Source: cfg.Name, File: listedKey(f),
		FileID: file.ID, Status: file.Status})
	if err != nil {
		fr.Err = err
		return fr
	}
	fr.Status, fr.Err = string(file.Status), nil
	fr.AckErr = p.ack(ctx, src, cfg, f, marker, file.Status)
	return fr
}

// answered are the files whose answers a received file gets: itself, or the
// files of the archive it is (or duplicates: their results again).
func (p *Poller) answered(ctx context.Context, file ledger.ReceivedFile) ([]ledger.ReceivedFile, error) {
	archive := file
	if file.Status == outcome.DuplicateFile {
		orig, err := p.Ledger.ReceivedFile(ctx, file.DuplicateOf)
		if err != nil {
			return nil, err
		}
		archive = orig
	}
	if archive.Kind != ledger.KindArchive {
		return []ledger.ReceivedFile{file}, nil
	}
	return p.Ledger.ChildFiles(ctx, archive.ID)
}

// describe is how a file ended; for an archive, with its files' counts summed.
func (p *Poller) describe(ctx context.Context, file ledger.ReceivedFile, answered []ledger.ReceivedFile) (pipeline.Result, error) {
	res, err := p.Files.Describe(ctx, file)
	if err != nil || len(answered) == 1 && answered[0].ID == file.ID {
		return res, err
	}
	for _, a := range answered {
		r, err := p.Files.Describe(ctx, a)
		if err != nil {
			return res, err
		}
		res.Summary.Rows += r.Summary.Rows
		res.Summary.Applied += r.Summary.Applied
		res.Summary.Rejected += r.Summary.Rejected
		res.Summary.Duplicate += r.Summary.Duplicate
	}
	return res, nil
}

// answer sends the brand the answer to a finished file it sent, through its
// source: the result of each file in answered (the file itself, or the files
// of the archive it is), and records each answered. The source is told whom
// to answer by what was recorded as the file was received (its Reply), so a
// file no source lists now (a rerun, a message moved after a restart) is
// answered alike; a file received before that was recorded is answered as
// listed. A file answered before is not answered again; one of an archive
// answered before a crash is not either.
func (p *Poller) answer(ctx context.Context, src ingest.Source, file ledger.ReceivedFile,
	answered []ledger.ReceivedFile, listed *ingest.File) error {
	if !file.AnsweredAt.IsZero() {
		return nil
	}
	for _, a := range answered {
		own := a.ID == file.ID || a.Parent == file.ID
		if own && !a.AnsweredAt.IsZero() {
			continue
		}
		to := replyTarget(file, listed)
		if err := p.deliver(ctx, src, to, a, a.Name); err != nil {
			return err
		}
		if own && a.ID != file.ID {
			if err := p.Ledger.MarkAnswered(ctx, a.ID); err != nil {
				return err
			}
		}
	}
	return p.Ledger.MarkAnswered(ctx, file.ID)
}

// replyTarget is the file a source's Put answers: as its Reply recorded it,
// or as it was listed when nothing was recorded.
func replyTarget(file ledger.ReceivedFile, listed *ingest.File) ingest.File {
	r := file.Reply
	if r.IsZero() && listed != nil {
		return *listed
	}
	return ingest.File{Name: cmp.Or(r.Name, file.Name),
		Reply: ingest.Reply{To: r.To, InReplyTo: r.InReplyTo, NotTaken: slices.Clone(r.NotTaken)}}
}

// deliver sends a finished file's answer to the brand, named after name: its
// result (its own, or for a duplicate the original's), or for a quarantined
// file a receipt with the reason (SPEC §4), unless the sender was refused (no
// backscatter). to is the file the brand sent, as Put takes it.
// A failed delivery leaves the file received but not done: the next poll
// delivers it.
func (p *Poller) deliver(ctx context.Context, src ingest.Source, to ingest.File, file ledger.ReceivedFile, name string) error {
	brand, err := p.Config.Brand(file.Brand)
	if err != nil {
		return err
	}
	format := pipeline.Format(brand)
	spool := cmp.Or(p.SpoolDir, p.Config.SpoolDir)
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	tmp, err := os.CreateTemp(spool, "answer-*.csv")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	switch {
	case file.Status != outcome.Quarantined:
		wrote, err := p.Files.WriteResult(ctx, file, format, tmp)
		if err != nil || !wrote {
			return err
		}
		name = filename.Result(name, file.ID)
	case file.Code.SenderRefused():
		return nil
	default:
		if err := p.Files.WriteReceipt(file, format, tmp); err != nil {
			return err
		}
		name = filename.Receipt(name, file.ID)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := src.Put(ctx, to, name, tmp); err != nil {
		return fmt.Errorf("deliver %s: %w", name, err)
	}
	return nil
}

// Applied is a file ApplyWaiting applied, with how it ended.
type Applied struct {
	File     ledger.ReceivedFile
	Result   pipeline.Result
	Duration time.Duration
}

// ApplyWaiting applies the received file fileID, and first every file its
// brand's sources delivered before it that still waits: a brand's files are
// applied in the order they arrived, whichever replica's job gets to them. A
// file finished meanwhile (by another replica) is left as it is. It returns
// the files it applied itself (not those another job finished while it waited
// for the brand's lock); the caller has their results delivered.
func (p *Poller) ApplyWaiting(ctx context.Context, fileID int64) ([]Applied, error) {
	waiting, err := p.Ledger.WaitingFiles(ctx, fileID)
	if err != nil {
		return nil, err
	}
	var applied []Applied
	for _, w := range waiting {
		began := time.Now()
		res, err := p.Files.ApplyReceived(ctx, w, p.applyParams(w))
		if err != nil {
			return applied, err
		}
		if res.AlreadyFinished {
			continue // another replica's: it answers for the file
		}
		applied = append(applied, Applied{File: w, Result: res, Duration: time.Since(began)})
	}
	return applied, nil
}

// applyParams are how a received file is read: its brand's format, and the
// kind its source says (detected from the header otherwise; a retry's is
// known).
func (p *Poller) applyParams(f ledger.ReceivedFile) pipeline.ApplyParams {
	// A rerun is applied in the name of who asked for it.
	ap := pipeline.ApplyParams{Actor: cmp.Or(f.Actor, "source:"+f.Source)}
	if b, err := p.Config.Brand(f.Brand); err == nil {
		ap.Format = pipeline.Format(b)
	}
	if s, err := p.Config.Source(f.Source); err == nil {
		ap.Kind = processors.Kind(s.Kind)
	}
	if f.Kind != "" {
		ap.Kind = processors.Kind(f.Kind) // a retry's is its original's
	}
	return ap
}

// refuseUnrouted ends a refused file that belongs to no brand (a message no
// route takes): with no brand's ledger to receive it into, it is recorded done
// as QUARANTINED without a received file, acknowledged as failed (moved to the
// source's failed folder or quarantine mailbox, where ops find it), and reported.
func (p *Poller) refuseUnrouted(ctx context.Context, src ingest.Source, cfg *config.Source, f ingest.File) FileReport {
	fr := FileReport{Name: f.Name, Path: f.Path, Status: string(outcome.Quarantined),
		Result: pipeline.Result{Status: outcome.Quarantined, Code: f.Refusal.Code, Reason: f.Refusal.Reason}}
	p.logger().WarnContext(ctx, "file refused: it belongs to no brand", "source", cfg.Name, "file", f.Name,
		"code", f.Refusal.Code, "reason", f.Refusal.Reason)
	err := p.Ledger.MarkSourceFileDone(ctx, ledger.SourceFileDoneParams{Source: cfg.Name, File: listedKey(f),
		Status: outcome.Quarantined})
	if err != nil {
		fr.Status, fr.Err = string(StatusError), err
		return fr
	}
	fr.AckErr = p.ack(ctx, src, cfg, f, ingest.File{}, outcome.Quarantined)
	return fr
}

// fetch writes f to the spool file w, hashing it on the way, and checks it is
// exactly the listed size. A file over the size limit is not fetched: the spool
// file gets its size without its bytes (a sparse file), which the pipeline
// quarantines as FILE_TOO_LARGE without reading it.
func (p *Poller) fetch(ctx context.Context, src ingest.Source, f ingest.File, w *os.File) ([]byte, error) {
	if limit := pipeline.Limits(p.Config.Limits).WithDefaults().MaxFileBytes; f.Size > limit {
		if err := w.Truncate(f.Size); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		return []byte{}, nil
	}
	cw := &checkedWriter{w: w, h: sha256.New(), max: f.Size}
	if err := src.Fetch(ctx, f, cw); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if cw.n != f.Size {
		return nil, fmt.Errorf("fetch: got %d bytes, listed as %d: %w", cw.n, f.Size, ingest.ErrNotStable)
	}
	if err := w.Sync(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return cw.h.Sum(nil), nil
}

// checkedWriter writes to the spool file and the hash, and refuses more bytes than listed.
type checkedWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	max int64
}

func (c *checkedWriter) Write(b []byte) (int, error) {
	if c.n+int64(len(b)) > c.max {
		return 0, fmt.Errorf("more than the %d bytes listed: %w", c.max, ingest.ErrNotStable)
	}
	n, err := c.w.Write(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	return n, err
}

// ack acknowledges a done file (and its done-marker) and records it. A failure
// is logged and returned for the report; the file stays done and the next poll
// acknowledges it.
func (p *Poller) ack(ctx context.Context, src ingest.Source, cfg *config.Source, f, marker ingest.File, status outcome.FileStatus) error {
	d := disposition(status)
	err := src.Ack(ctx, f, d)
	if err == nil && marker.Name != "" {
		err = src.Ack(ctx, marker, d)
	}
	if err == nil {
		err = p.Ledger.MarkSourceFileAcked(ctx, cfg.Name, listedKey(f))
	}
	if err != nil {
		p.logger().WarnContext(ctx, "acknowledge failed; retried next poll", "source", cfg.Name, "file", f.Name, "error", err)
	}
	return err
}

// disposition is where a file with the given outcome goes.
func disposition(status outcome.FileStatus) ingest.Disposition {
	if status == outcome.Quarantined {
		return ingest.Failed
	}
	return ingest.Processed
}

func listedKey(f ingest.File) ledger.ListedFile {
	return ledger.ListedFile{Path: f.Path, Size: f.Size, ModTime: f.ModTime.Truncate(time.Microsecond)}
}

func (p *Poller) clock() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Poller) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}
