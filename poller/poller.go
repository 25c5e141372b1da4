package ingest

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
	"path"
	"slices"
	"strings"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// Defaults of the Poller's zero fields.
const (
	DefaultMaxFilesPerPoll = 100
	DefaultMaxBytesPerPoll = 1 << 30 // 1 GiB
)

// Poller takes a source's stable, new files through the pipeline. It keeps no
// state of its own between polls: the ledger's seen table is its memory, so a
// restart (or another replica) carries on where it stopped.
type Poller struct {
	Ledger   *ledger.Ledger
	Pipeline *pipeline.Pipeline
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
	// Now is the clock; default time.Now.
	Now func() time.Time
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
	// StatusAcknowledged: done in an earlier poll (or the same bytes at the same
	// path were), acknowledged now.
	StatusAcknowledged FileStatus = "ACKNOWLEDGED"
	// StatusError: fetching, processing or uploading failed; retried next poll.
	StatusError FileStatus = "ERROR"
)

// FileReport is one file of a poll. Status is a pipeline outcome (COMPLETED,
// DUPLICATE_FILE, QUARANTINED) for a file processed now, else one of the
// FileStatus values.
type FileReport struct {
	Name   string
	Path   string
	Status string
	Result pipeline.Result // for processed files
	// AckErr is set when the outcome was committed but the source's copy could
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

// PollOnce polls one source: it lists it, takes the stable files it has not done
// (at most MaxFilesPerPoll files and MaxBytesPerPoll bytes), fetches each to the
// spool, processes it, uploads its result file, records it done, and then
// acknowledges it. A crash anywhere is harmless: a file is recorded done only
// after its outcome is committed, and one whose outcome was committed but not
// recorded comes back as a DUPLICATE_FILE of itself.
//
// A source whose listing fails is backed off (Backoff; the ledger's
// source_health remembers it across restarts and replicas): until then PollOnce
// returns a *BackingOffError without contacting it, unless IgnoreBackoff.
//
// The error is non-nil when the source could not be polled at all (down, busy,
// backed off) or when some file failed; the report says which.
func (p *Poller) PollOnce(ctx context.Context, src Source, cfg *config.Source) (PollReport, error) {
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
	listed, err := src.List(ctx)
	if err != nil {
		err = fmt.Errorf("source %s: list: %w", cfg.Name, err)
		if ctx.Err() == nil { // a poll cut short by shutdown says nothing about the source
			h, herr := p.Ledger.RecordPollFailure(ctx, cfg.Name, p.clock(), err.Error(), Backoff)
			if herr != nil {
				return rep, errors.Join(err, herr)
			}
			p.logger().WarnContext(ctx, "source unreachable; backing off", "source", cfg.Name,
				"failures", h.Failures, "failing_since", h.FailingSince, "next_attempt", h.NextAttempt, "error", err)
		}
		return rep, err
	}
	if err := p.Ledger.RecordPollSuccess(ctx, cfg.Name, p.clock()); err != nil {
		return rep, err
	}
	candidates, markers := p.candidates(listed, cfg)
	rep.Listed = len(candidates)
	keys := make([]ledger.ListedFile, len(candidates))
	for i, f := range candidates {
		keys[i] = listedKey(f)
	}
	seen, err := p.Ledger.ObserveSourceFiles(ctx, cfg.Name, keys)
	if err != nil {
		return rep, err
	}

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

	now := p.clock()
	minAge, _ := cfg.MinAge.Fixed()
	var taken int
	var takenBytes int64
	var errs []error
	for i, f := range candidates {
		s := seen[i]
		fr := FileReport{Name: f.Name, Path: f.Path}
		switch {
		case s.State == ledger.SourceFileAcked:
			continue // acknowledged again above
		case s.State == ledger.SourceFileDone:
			fr.Status = string(StatusAcknowledged)
			fr.Result = pipeline.Result{FileID: s.FileID, Status: s.Status}
			fr.AckErr = p.ack(ctx, src, cfg, f, markers[f.Name], s.Status)
			rep.Files = append(rep.Files, fr)
			continue
		}
		if !p.stable(f, s, cfg, minAge, now, markers) {
			fr.Status = string(StatusWaiting)
			rep.Files = append(rep.Files, fr)
			continue
		}
		if taken >= cmp.Or(p.MaxFilesPerPoll, DefaultMaxFilesPerPoll) ||
			(taken > 0 && takenBytes+f.Size > cmp.Or(p.MaxBytesPerPoll, DefaultMaxBytesPerPoll)) {
			fr.Status = string(StatusDeferred)
			rep.Files = append(rep.Files, fr)
			continue
		}
		taken++
		takenBytes += f.Size
		fr = p.take(ctx, src, cfg, f, markers[f.Name])
		if fr.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, fr.Err))
		}
		rep.Files = append(rep.Files, fr)
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("source %s: %w", cfg.Name, errors.Join(errs...))
	}
	return rep, nil
}

// candidates keeps the files the name rules let through, oldest first, and
// returns the done-markers found by the name of the file they mark.
func (p *Poller) candidates(listed []File, cfg *config.Source) ([]File, map[string]File) {
	markers := map[string]File{}
	if cfg.DoneMarker != "" {
		for _, f := range listed {
			if name, ok := strings.CutSuffix(f.Name, cfg.DoneMarker); ok && name != "" {
				markers[name] = f
			}
		}
	}
	var out []File
	for _, f := range listed {
		switch {
		case !SafeName(f.Name):
			p.logger().Warn("file name refused: not a plain file name", "source", cfg.Name, "name", f.Name)
		case pipeline.IsOurs(f.Name):
		case cfg.DoneMarker != "" && strings.HasSuffix(f.Name, cfg.DoneMarker):
		case f.Refusal == nil && !Wanted(f.Name, cfg.Include, cfg.Exclude):
			// A refused message is taken whatever its name: it must be quarantined.
		default:
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b File) int {
		return cmp.Or(a.ModTime.Compare(b.ModTime), strings.Compare(a.Path, b.Path))
	})
	return out, markers
}

// SafeName reports whether a remote file name is a plain name: not empty, not
// . or .., without a slash, backslash or NUL. Other names are never taken: a
// server that sends "../x.csv" is broken or hostile.
func SafeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

// Wanted reports whether a file name passes the include patterns (any; none means
// all) and no exclude pattern. Our own result_* and receipt_* files are never wanted.
func Wanted(name string, include, exclude []string) bool {
	if pipeline.IsOurs(name) {
		return false
	}
	for _, pat := range exclude {
		if ok, _ := path.Match(pat, name); ok {
			return false
		}
	}
	if len(include) == 0 {
		return true
	}
	for _, pat := range include {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// stable says whether a file may be taken: its done-marker exists, or (without
// done-markers) it was listed before with the same size and time and is older
// than min_age.
func (p *Poller) stable(f File, s ledger.SeenFile, cfg *config.Source, minAge time.Duration, now time.Time, markers map[string]File) bool {
	if cfg.DoneMarker != "" {
		_, ok := markers[f.Name]
		return ok
	}
	return s.State == ledger.SourceFileSeen && now.Sub(f.ModTime) >= minAge
}

// take fetches, processes, uploads the result of, records and acknowledges one file.
func (p *Poller) take(ctx context.Context, src Source, cfg *config.Source, f File, marker File) FileReport {
	fr := FileReport{Name: f.Name, Path: f.Path, Status: string(StatusError)}
	brandID := cmp.Or(f.Brand, cfg.Brand)
	if f.Refusal != nil && brandID == "" {
		return p.refuseUnrouted(ctx, src, cfg, f)
	}
	brand, err := p.Config.Brand(brandID)
	if err != nil {
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

	result, err := os.CreateTemp(spool, cfg.Name+"-*.result")
	if err != nil {
		fr.Err = fmt.Errorf("spool: %w", err)
		return fr
	}
	defer os.Remove(result.Name())
	defer result.Close()
	res, err := p.Pipeline.Process(ctx, pipeline.Params{
		Brand: brand.ID, Format: brand.ProcessorFormat(), Source: cfg.Name, Actor: "source:" + cfg.Name,
		Path: tmp.Name(), Name: f.Name, Kind: processors.Kind(cfg.Kind), Result: result, Refuse: f.Refusal,
	})
	if err != nil {
		fr.Err = err
		return fr
	}
	fr.Result = res
	if res.WroteResult {
		if _, err := result.Seek(0, io.SeekStart); err != nil {
			fr.Err = err
			return fr
		}
		// A failed upload leaves the file undone: the next poll finds it a
		// DUPLICATE_FILE of itself, which carries the same result, and uploads that.
		if err := src.Put(ctx, f, pipeline.ResultName(f.Name), result); err != nil {
			fr.Err = fmt.Errorf("upload result: %w", err)
			return fr
		}
	}
	err = p.Ledger.MarkSourceFileDone(ctx, ledger.SourceFileDoneParams{Source: cfg.Name, File: key,
		SHA256: sum, FileID: res.FileID, Status: res.Status})
	if err != nil {
		fr.Err = err
		return fr
	}
	fr.Status = string(res.Status)
	fr.AckErr = p.ack(ctx, src, cfg, f, marker, res.Status)
	return fr
}

// refuseUnrouted ends a refused file that belongs to no brand (a message no
// route takes): with no brand's ledger to receive it into, it is recorded done
// as QUARANTINED without a received file, acknowledged as failed (moved to the
// source's failed folder or quarantine mailbox, where ops find it), and reported.
func (p *Poller) refuseUnrouted(ctx context.Context, src Source, cfg *config.Source, f File) FileReport {
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
	fr.AckErr = p.ack(ctx, src, cfg, f, File{}, outcome.Quarantined)
	return fr
}

// fetch writes f to the spool file w, hashing it on the way, and checks it is
// exactly the listed size. A file over the size limit is not fetched: the spool
// file gets its size without its bytes (a sparse file), which the pipeline
// quarantines as FILE_TOO_LARGE without reading it.
func (p *Poller) fetch(ctx context.Context, src Source, f File, w *os.File) ([]byte, error) {
	if limit := p.Pipeline.Limits.WithDefaults().MaxFileBytes; f.Size > limit {
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
		return nil, fmt.Errorf("fetch: got %d bytes, listed as %d: %w", cw.n, f.Size, ErrNotStable)
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
		return 0, fmt.Errorf("more than the %d bytes listed: %w", c.max, ErrNotStable)
	}
	n, err := c.w.Write(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	return n, err
}

// ack acknowledges a done file (and its done-marker) and records it. A failure
// is logged and returned for the report; the file stays done and the next poll
// acknowledges it.
func (p *Poller) ack(ctx context.Context, src Source, cfg *config.Source, f, marker File, status outcome.FileStatus) error {
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
func disposition(status outcome.FileStatus) Disposition {
	if status == outcome.Quarantined {
		return Failed
	}
	return Processed
}

func listedKey(f File) ledger.ListedFile {
	return ledger.ListedFile{Path: f.Path, Size: f.Size, ModTime: f.ModTime.Truncate(time.Microsecond)}
}

func (p *Poller) clock() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}
