// Package pipeline takes one received file from disk to the ledger and back to the
// brand: keep its bytes, parse it, apply it, write its result file. The CLI's
// apply and import commands and every source call the same Process, so a file
// behaves the same however it arrived.
package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// Pipeline processes received files. Its zero values take documented defaults.
type Pipeline struct {
	Ledger *ledger.Ledger
	// Limits bound what one file may cost; zero fields take processors' defaults.
	Limits processors.Limits
	// Retries is how often a transient failure (the database went away) is retried
	// before Process gives up, leaving the file received but unapplied. Default 3.
	Retries int
	// RetryWait is the first wait between retries; it doubles each time. Default 1s.
	RetryWait time.Duration
	// SpoolDir is where bytes read back from the ledger are staged; default
	// returnsd-spool in the system's temporary folder.
	SpoolDir string
	Logger   *slog.Logger
}

// Params describes one file to process.
type Params struct {
	Brand  string
	Format processors.Format
	Source string // the source's name, or "cli"
	Actor  string // who, for the ledger events
	Path   string // the file on local disk (for remote sources, the spool copy)
	Name   string // the name the brand gave the file; default: the base of Path
	// Kind is what the file must be; empty detects it from the header among Accept.
	Kind processors.Kind
	// Accept lists the kinds detection may choose; default: BrandKinds.
	Accept []processors.Kind
	DryRun bool
	// Result receives the result file (SPEC §4); nil writes none. It is emptied
	// before each attempt to write it, so a retry never appends to what a failed
	// attempt wrote.
	Result ResultFile
	// Progress, when set, is called now and then with the bytes read so far and the file's size.
	Progress func(done, total int64)
	// Refuse, when set, quarantines the file with this code and reason instead
	// of parsing it: its source refused it (a mail from a sender not allowed).
	// Its bytes are kept like any received file's.
	Refuse *processors.FileError
}

// ResultFile is where a result file is written: a file the pipeline can empty
// and rewind. *os.File is one.
type ResultFile interface {
	io.Writer
	Truncate(size int64) error
	Seek(offset int64, whence int) (int64, error)
}

// Result says how a file ended.
type Result struct {
	FileID      int64
	Status      outcome.FileStatus
	Kind        processors.Kind
	Code        outcome.QuarantineCode // for QUARANTINED
	Reason      string                 // for QUARANTINED and DUPLICATE_FILE
	DuplicateOf int64
	Summary     ledger.Summary
	// AlreadyFinished says ApplyReceived found the file finished (by another
	// replica, or before a crash): it changed nothing, and the result is of
	// how the file ended.
	AlreadyFinished bool
	// WroteResult says whether Params.Result received a result file. A duplicate
	// file gets the result of the file it duplicates: a crash between the commit
	// and the result file, or a brand that lost its result, is mended by sending
	// the same file again.
	WroteResult bool
	// Children are how the files of an archive split on receipt were received.
	Children []ledger.Received
	// resultOf is the file whose outcomes make the result file: this one, or
	// the one it duplicates. 0: no result file (quarantined, or a dry run's,
	// which is written inside its transaction).
	resultOf int64
}

// BrandKinds are the kinds a brand's file may be when nothing says which: its
// changes to actions and its resolutions of inquiries. Tracking exports and
// partners' inquiries are loaded by explicit import commands.
var BrandKinds = []processors.Kind{processors.ActionUpdates, processors.InquiryResolutions}

// Process takes one file through the pipeline. A file that cannot be processed is
// QUARANTINED with a reason, not an error; an error means the file could not be
// taken at all (unreadable, the database down past the retries) and is left to be
// tried again — it is never half-applied.
func (p *Pipeline) Process(ctx context.Context, params Params) (Result, error) {
	if params.Name == "" {
		params.Name = filepath.Base(params.Path)
	}
	if filename.IsOurs(params.Name) {
		return Result{}, fmt.Errorf("%s is a returnsd result file; it is never applied", params.Name)
	}
	f, size, err := openFile(params.Path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	limits := p.Limits.WithDefaults()

	// The file this run received. A retry applies that file and never receives it
	// again: if an attempt committed but did not hear so, the retry finds the file
	// finished and reports what this run did, not a DUPLICATE_FILE of itself.
	var fileID int64
	var res Result
	err = p.retry(ctx, func() error {
		var err error
		res, err = p.process(ctx, params, f, size, limits, &fileID)
		return err
	})
	if err == nil && res.resultOf != 0 && params.Result != nil {
		// The outcomes are committed: writing the result is retried on its own,
		// starting from nothing each time.
		err = p.retry(ctx, func() error {
			return p.writeStoredResult(ctx, f, size, params, limits, res.resultOf)
		})
		res.WroteResult = err == nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", params.Name, err)
	}
	p.logProcessed(ctx, params, res)
	return res, nil
}

func (p *Pipeline) logProcessed(ctx context.Context, params Params, res Result) {
	p.logger().InfoContext(ctx, "file processed", "brand", params.Brand, "source", params.Source, "file", params.Name,
		"file_id", res.FileID, "status", res.Status, "kind", res.Kind, "rows", res.Summary.Rows,
		"applied", res.Summary.Applied, "rejected", res.Summary.Rejected, "duplicate", res.Summary.Duplicate,
		"reason", res.Reason, "dry_run", params.DryRun)
}

func (p *Pipeline) process(ctx context.Context, params Params, f *os.File, size int64, limits processors.Limits, fileID *int64) (Result, error) {
	var res Result
	if params.DryRun {
		if size > limits.MaxFileBytes {
			return quarantined(res, tooLarge(size, limits)), nil
		}
		sum, err := hashFile(f)
		if err != nil {
			return Result{}, err
		}
		applied, err := p.Ledger.AppliedFile(ctx, params.Brand, sum)
		if err != nil {
			return Result{}, err
		}
		if applied != 0 {
			return p.duplicate(ctx, f, size, params, limits, Result{}, applied)
		}
	} else if *fileID != 0 {
		res.FileID = *fileID
	} else {
		rec, err := p.receive(ctx, ReceiveParams{Brand: params.Brand, Source: params.Source, Name: params.Name,
			Refuse: params.Refuse}, f, size, limits)
		if err != nil {
			return Result{}, err
		}
		if rec.Status != outcome.Received {
			if rec.Status == outcome.DuplicateFile {
				return p.duplicate(ctx, f, size, params, limits, rec, rec.DuplicateOf)
			}
			return rec, nil
		}
		*fileID, res.FileID = rec.FileID, rec.FileID
	}
	return p.apply(ctx, params, f, size, limits, res)
}

// ReceiveParams describes a file fetched by a source, to keep in the ledger
// before it is applied (by ApplyReceived, from the bytes kept).
type ReceiveParams struct {
	Brand  string
	Source string
	Name   string
	Path   string // the spool copy
	// Refuse, when set, quarantines the file as it is received (its bytes kept).
	Refuse *processors.FileError
	// Listed and Then are ledger.ReceiveParams': the source file is marked
	// received, and Then runs (a job is enqueued), with the file, atomically.
	Listed *ledger.SourceFileKey
	Then   func(ctx context.Context, tx pgx.Tx, r ledger.Received) error
	// Split receives a zip of several data files as the archive and each of its
	// files (processors.SplitArchive), each to be applied on its own. Sources
	// split; the command line applies one file.
	Split bool
	// Reply is what answering the file needs once no source lists it
	// (ledger.Reply): the poller records the listed file's.
	Reply ledger.Reply
	// rerun makes the file a run of an earlier one (rerun.go).
	rerun *ledger.Rerun
}

// Receive keeps a fetched file's bytes in the ledger without applying it. The
// result is RECEIVED (to be applied), DUPLICATE_FILE (of an applied file) or
// QUARANTINED (refused, or over the size limit). An error leaves nothing.
func (p *Pipeline) Receive(ctx context.Context, rp ReceiveParams) (Result, error) {
	f, size, err := openFile(rp.Path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	var res Result
	err = p.retry(ctx, func() error {
		var err error
		res, err = p.receive(ctx, rp, f, size, p.Limits.WithDefaults())
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", rp.Name, err)
	}
	return res, nil
}

func (p *Pipeline) receive(ctx context.Context, rp ReceiveParams, f *os.File, size int64, limits processors.Limits) (Result, error) {
	receive := ledger.ReceiveParams{Brand: rp.Brand, Source: rp.Source, Name: rp.Name, Size: size,
		Listed: rp.Listed, Then: rp.Then, Reply: rp.Reply, Rerun: rp.rerun}
	refuse := rp.Refuse
	bySource := refuse != nil
	if size > limits.MaxFileBytes {
		refuse = tooLarge(size, limits)
		receive.SHA256 = []byte{} // not read: the file is too large to hash
	} else {
		sum, err := hashFile(f)
		if err != nil {
			return Result{}, err
		}
		receive.SHA256, receive.Body = sum, io.NewSectionReader(f, 0, size)
		if rp.Split && refuse == nil {
			children, cleanup, err := p.split(f, size, rp.Name, limits)
			defer cleanup()
			var fe *processors.FileError
			switch {
			case errors.As(err, &fe):
				refuse = fe
			case err != nil:
				return Result{}, err
			}
			receive.Children = children
		}
	}
	if refuse != nil {
		refuse = &processors.FileError{Code: refuse.Code, Reason: safetext.Printable(refuse.Reason)}
		receive.Refusal = &ledger.Refusal{Code: refuse.Code, Reason: refuse.Reason, BySource: bySource}
	}
	rec, err := p.Ledger.Receive(ctx, receive)
	if err != nil {
		return Result{}, err
	}
	res := Result{FileID: rec.FileID, Status: rec.Status, DuplicateOf: rec.DuplicateOf, Children: rec.Children}
	switch rec.Status {
	case outcome.Quarantined:
		res = quarantined(res, refuse)
	case outcome.DuplicateFile:
		res.Reason = duplicateReason(rec.DuplicateOf)
	}
	return res, nil
}

// split spools the data files of an archive that holds several to temporary
// files, for ledger.ReceiveParams.Children; none for any other file. cleanup
// removes them once received.
func (p *Pipeline) split(f *os.File, size int64, name string, limits processors.Limits) ([]ledger.Child, func(), error) {
	var children []ledger.Child
	var files []*os.File
	cleanup := func() {
		for _, t := range files {
			t.Close()
			os.Remove(t.Name())
		}
	}
	_, err := processors.SplitArchive(f, size, name, limits, func(e processors.ArchiveEntry, body io.Reader) error {
		if err := os.MkdirAll(p.spoolDir(), 0o700); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		t, err := os.CreateTemp(p.spoolDir(), "entry-*.spool")
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		files = append(files, t)
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(t, h), body)
		if err != nil {
			return err
		}
		children = append(children, ledger.Child{Name: e.Name, Size: n, SHA256: h.Sum(nil), Body: io.NewSectionReader(t, 0, n)})
		return nil
	})
	if err != nil {
		return nil, cleanup, err
	}
	return children, cleanup, nil
}

func tooLarge(size int64, limits processors.Limits) *processors.FileError {
	return &processors.FileError{Code: outcome.FileTooLarge, Reason: fmt.Sprintf(
		"the file is %d bytes, over the limit of %d (limits.max_file_bytes); its bytes were not kept", size, limits.MaxFileBytes)}
}

func quarantined(res Result, fe *processors.FileError) Result {
	res.Status, res.Code, res.Reason = outcome.Quarantined, fe.Code, safetext.Printable(fe.Reason)
	return res
}

// ApplyParams says how a received file is applied.
type ApplyParams struct {
	Format processors.Format
	// Kind is what the file must be; empty detects it from the header among Accept.
	Kind processors.Kind
	// Accept lists the kinds detection may choose; default: BrandKinds.
	Accept []processors.Kind
	Actor  string
}

// ApplyReceived applies a file that Receive kept, from the bytes the ledger
// holds (any replica can), and says how it ended. A file already finished
// (by another replica, or before a crash) is reported, not applied again.
func (p *Pipeline) ApplyReceived(ctx context.Context, file ledger.ReceivedFile, ap ApplyParams) (Result, error) {
	if file.Status != outcome.Received {
		res, err := p.Describe(ctx, file)
		res.AlreadyFinished = true
		return res, err
	}
	f, size, err := p.spool(ctx, file)
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	params := Params{Brand: file.Brand, Format: ap.Format, Source: file.Source, Actor: ap.Actor,
		Name: file.Name, Kind: ap.Kind, Accept: ap.Accept}
	var res Result
	err = p.retry(ctx, func() error {
		var err error
		res, err = p.apply(ctx, params, f, size, p.Limits.WithDefaults(), Result{FileID: file.ID})
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", file.Name, err)
	}
	if res.Summary.AlreadyFinished {
		res.AlreadyFinished = true
	}
	if !res.AlreadyFinished {
		p.logProcessed(ctx, params, res)
	}
	return res, nil
}

// Describe says how a finished file ended, with its counts.
func (p *Pipeline) Describe(ctx context.Context, file ledger.ReceivedFile) (Result, error) {
	res := Result{FileID: file.ID, Status: file.Status, DuplicateOf: file.DuplicateOf, Code: file.Code, Reason: file.Reason}
	if file.Status == outcome.Completed {
		var err error
		if res.Summary, err = p.Ledger.FileSummary(ctx, file.ID); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// WriteResult writes the result file of a finished file to w: its own
// outcomes, or for a DUPLICATE_FILE those of the file it duplicates. It
// reports false, writing nothing, for a file without a result (quarantined).
func (p *Pipeline) WriteResult(ctx context.Context, file ledger.ReceivedFile, format processors.Format, w ResultFile) (bool, error) {
	of := file
	switch file.Status {
	case outcome.Completed:
	case outcome.DuplicateFile:
		var err error
		if of, err = p.Ledger.ReceivedFile(ctx, file.DuplicateOf); err != nil {
			return false, err
		}
	default:
		return false, nil
	}
	f, size, err := p.spool(ctx, of)
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	params := Params{Name: file.Name, Format: format, Result: w}
	err = p.retry(ctx, func() error {
		return p.writeStoredResult(ctx, f, size, params, p.Limits.WithDefaults(), of.ID)
	})
	return err == nil, err
}

// WriteReceipt writes the receipt of a quarantined file to w (SPEC §4): its
// name, code and reason, in the brand's configured delimiter and encoding, else
// UTF-8 (with a byte-order mark, which Excel reads it by) and commas.
func (p *Pipeline) WriteReceipt(file ledger.ReceivedFile, format processors.Format, w io.Writer) error {
	rf := processors.Dialect{BOM: true}.ResultFormat(format)
	return processors.WriteReceipt(w, rf, processors.Receipt{File: safetext.Printable(file.Name), FileID: file.ID,
		ReceivedAt: file.ReceivedAt.UTC().Format(time.RFC3339), Status: file.Status, Code: file.Code, Reason: file.Reason})
}

// spool copies the bytes the ledger keeps of a file to a temporary file.
func (p *Pipeline) spool(ctx context.Context, file ledger.ReceivedFile) (*os.File, int64, error) {
	if !file.BytesKept {
		return nil, 0, fmt.Errorf("file %d: its bytes were not kept", file.ID)
	}
	if err := os.MkdirAll(p.spoolDir(), 0o700); err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	f, err := os.CreateTemp(p.spoolDir(), fmt.Sprintf("file-%d-*.spool", file.ID))
	if err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	err = p.retry(ctx, func() error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return p.Ledger.FileBytes(ctx, file.ID, f)
	})
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, fmt.Errorf("file %d: read its bytes: %w", file.ID, err)
	}
	return f, file.Size, nil
}

func (p *Pipeline) spoolDir() string {
	if p.SpoolDir != "" {
		return p.SpoolDir
	}
	return filepath.Join(os.TempDir(), "returnsd-spool")
}

// apply parses and applies one received file (res.FileID; none for a dry run)
// and quarantines it when it cannot be processed.
func (p *Pipeline) apply(ctx context.Context, params Params, f *os.File, size int64, limits processors.Limits, res Result) (Result, error) {
	table, kind, err := p.open(f, size, params, limits)
	if err != nil {
		return p.quarantineOrFail(ctx, params, res, err)
	}
	defer table.Close()
	res.Kind = kind
	if params.Progress != nil {
		params.Progress(0, size)
	}

	apply := ledger.ApplyParams{FileID: res.FileID, Brand: params.Brand, Actor: params.Actor, DryRun: params.DryRun}
	if params.DryRun && params.Result != nil {
		apply.Inspect = func(ctx context.Context, outcomes ledger.OutcomeReader) error {
			return p.writeResult(ctx, f, size, params, limits, outcomes)
		}
	}
	progress := func() {
		if params.Progress != nil {
			params.Progress(table.Offset(), size)
		}
	}
	var sum ledger.Summary
	switch kind {
	case processors.ActionUpdates:
		sum, err = applyKind(ctx, table, params.Format, processors.NewActionUpdateReader, p.Ledger.ApplyActionUpdates, apply, progress)
	case processors.Actions:
		sum, err = applyKind(ctx, table, params.Format, processors.NewActionRecordReader, p.Ledger.ImportActions, apply, progress)
	case processors.Inquiries:
		sum, err = applyKind(ctx, table, params.Format, processors.NewInquiryReader, p.Ledger.ImportInquiries, apply, progress)
	case processors.InquiryResolutions:
		sum, err = applyKind(ctx, table, params.Format, processors.NewInquiryResolutionReader, p.Ledger.ApplyInquiryResolutions, apply, progress)
	default:
		err = &processors.FileError{Code: outcome.UnknownKind, Reason: fmt.Sprintf("%s files are not applied here", kind)}
	}
	if err != nil {
		return p.quarantineOrFail(ctx, params, res, err)
	}
	if params.Progress != nil {
		params.Progress(size, size)
	}
	res.Summary, res.Status = sum, sum.Status
	switch {
	case params.DryRun:
		res.WroteResult = params.Result != nil
	case res.Status == outcome.Completed:
		res.resultOf = res.FileID
	case res.Status == outcome.DuplicateFile:
		// Its bytes were applied, under another name, while it waited.
		res.DuplicateOf, res.resultOf = sum.DuplicateOf, sum.DuplicateOf
		res.Reason = duplicateReason(sum.DuplicateOf)
	}
	return res, nil
}

// applyKind opens a file kind's reader over the table and applies its rows with
// the ledger operation of that kind.
func applyKind[T any, R interface{ Next() (T, error) }](ctx context.Context, table *processors.Table, f processors.Format,
	open func(*processors.Table, processors.Format) (R, error),
	apply func(context.Context, ledger.ApplyParams, func() (T, error)) (ledger.Summary, error),
	params ledger.ApplyParams, progress func()) (ledger.Summary, error) {
	r, err := open(table, f)
	if err != nil {
		return ledger.Summary{}, err
	}
	return apply(ctx, params, withProgress(r.Next, progress))
}

// duplicateReason is a DUPLICATE_FILE's reason, as the ledger records it.
func duplicateReason(original int64) string {
	return fmt.Sprintf("the same bytes were applied as file %d", original)
}

// duplicate ends a file whose bytes were applied before as file original, and
// gives it that file's result.
func (p *Pipeline) duplicate(ctx context.Context, f *os.File, size int64, params Params,
	limits processors.Limits, res Result, original int64) (Result, error) {
	res.Status, res.DuplicateOf = outcome.DuplicateFile, original
	res.Reason = duplicateReason(original)
	if params.DryRun {
		if params.Result == nil {
			return res, nil
		}
		res.WroteResult = true
		return res, p.writeStoredResult(ctx, f, size, params, limits, original)
	}
	res.resultOf = original
	return res, nil
}

// writeStoredResult writes the result file of an applied file from the outcomes the ledger keeps.
func (p *Pipeline) writeStoredResult(ctx context.Context, f *os.File, size int64, params Params,
	limits processors.Limits, fileID int64) error {
	err := p.writeResult(ctx, f, size, params, limits, func(ctx context.Context, fn func(outcome.Row) error) error {
		return p.Ledger.Outcomes(ctx, fileID, fn)
	})
	if err != nil {
		return fmt.Errorf("write result file: %w", err)
	}
	return nil
}

// open opens the file's table and decides its kind.
func (p *Pipeline) open(f *os.File, size int64, params Params, limits processors.Limits) (*processors.Table, processors.Kind, error) {
	table, err := processors.Open(f, size, params.Name, params.Format, limits)
	if err != nil {
		return nil, "", err
	}
	kind := params.Kind
	if kind == "" {
		kind, err = processors.DetectKind(table.Header(), params.Format.Aliases)
		if err != nil {
			table.Close()
			return nil, "", err
		}
		accept := params.Accept
		if len(accept) == 0 {
			accept = BrandKinds
		}
		if !containsKind(accept, kind) {
			table.Close()
			return nil, "", &processors.FileError{Code: outcome.UnknownKind,
				Reason: fmt.Sprintf("the header reads as a file of %s, which is not accepted here (accepted: %v)", kind, accept)}
		}
	}
	return table, kind, nil
}

func containsKind(kinds []processors.Kind, k processors.Kind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// quarantineOrFail quarantines the file when err is about the file itself and
// returns err unchanged otherwise (a database failure: the file stays received).
func (p *Pipeline) quarantineOrFail(ctx context.Context, params Params, res Result, err error) (Result, error) {
	var fe *processors.FileError
	if !errors.As(err, &fe) {
		return res, err
	}
	// A reason may quote what a library read in the file (a name, a tag), bytes
	// and all: stored and printed, it must be text.
	res = quarantined(res, fe)
	if params.DryRun {
		return res, nil
	}
	ok, err := p.Ledger.Quarantine(ctx, res.FileID, fe.Code, res.Reason)
	if err != nil || ok {
		return res, err
	}
	// Another replica finished the file first: say how it ended.
	file, err := p.Ledger.ReceivedFile(ctx, res.FileID)
	if err != nil {
		return Result{}, err
	}
	if res, err = p.Describe(ctx, file); err != nil {
		return Result{}, err
	}
	res.AlreadyFinished = true
	return res, nil
}

// writeResult writes the result file: the file's own records, re-read, merged in
// line order with the outcomes the ledger recorded.
func (p *Pipeline) writeResult(ctx context.Context, f *os.File, size int64, params Params,
	limits processors.Limits, outcomes ledger.OutcomeReader) error {
	if err := params.Result.Truncate(0); err != nil {
		return err
	}
	if _, err := params.Result.Seek(0, io.SeekStart); err != nil {
		return err
	}
	table, err := processors.Open(f, size, params.Name, params.Format, limits)
	if err != nil {
		return err
	}
	defer table.Close()
	w, err := processors.NewResultWriter(params.Result, table.Header(), table.Dialect().ResultFormat(params.Format))
	if err != nil {
		return err
	}
	rec, recErr := table.Next()
	err = outcomes(ctx, func(row outcome.Row) error {
		for recErr == nil && rec.Line < row.Line {
			rec, recErr = table.Next()
		}
		if recErr != nil {
			return fmt.Errorf("line %d has an outcome but no record: %w", row.Line, recErr)
		}
		if rec.Line != row.Line {
			return fmt.Errorf("line %d has an outcome but no record", row.Line)
		}
		return w.Write(rec.Fields, row)
	})
	if err != nil {
		return err
	}
	return w.Flush()
}

func (p *Pipeline) retry(ctx context.Context, fn func() error) error {
	retries := p.Retries
	if retries == 0 {
		retries = 3
	}
	wait := p.RetryWait
	if wait == 0 {
		wait = time.Second
	}
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || !errors.Is(err, ledger.ErrTransient) || attempt == retries {
			return err
		}
		p.logger().WarnContext(ctx, "transient failure; retrying", "error", err, "attempt", attempt+1, "wait", wait)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (p *Pipeline) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

// openFile opens a local file for reading and says its size.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, info.Size(), nil
}

func hashFile(f *os.File) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return h.Sum(nil), nil
}

// withProgress calls progress every 64 Ki rows as next is drained.
func withProgress[T any](next func() (T, error), progress func()) func() (T, error) {
	n := 0
	return func() (T, error) {
		n++
		if n&0xffff == 0 {
			progress()
		}
		return next()
	}
}
