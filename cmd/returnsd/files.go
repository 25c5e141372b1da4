package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/sources"
	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/poller"
)

// files is `returnsd files list|show|download|reprocess|retry-rejected|answer`:
// find the received files, fetch their bytes and results, and run them again.
func (e *env) files(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("files: say what to do: files list|show|download|reprocess|retry-rejected|answer")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "list":
		return e.filesList(ctx, rest)
	case "show":
		return e.filesShow(ctx, rest)
	case "download":
		return e.filesDownload(ctx, rest)
	case "reprocess":
		return e.filesRerun(ctx, "reprocess", rest)
	case "retry-rejected":
		return e.filesRerun(ctx, "retry-rejected", rest)
	case "answer":
		return e.filesAnswer(ctx, rest)
	default:
		return usagef("files: unknown command %q (list, show, download, reprocess, retry-rejected, answer)", cmd)
	}
}

// fileIDArg is the one FILE_ID a files command takes.
func fileIDArg(name string, pos []string) (int64, error) {
	if len(pos) != 1 {
		return 0, usagef("files %s: give exactly one FILE_ID", name)
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(pos[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("files %s: %q is not a file id (a number, as files list shows)", name, pos[0])
	}
	return id, nil
}

// parseSince reads --since: an RFC 3339 time, a date (midnight UTC), or how
// long ago ("24h", "7d", "2w", "1mo").
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := config.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time (2026-11-24T09:00:00Z), a date (2026-11-24) or how long ago (24h, 7d)", s)
	}
	return now.AddDate(0, -d.Months, -d.Days).Add(-d.Time), nil
}

func checkFormat(cmd, format string) error {
	if format != "text" && format != "json" {
		return usagef("files %s: --format is text or json, not %q", cmd, format)
	}
	return nil
}

func (e *env) filesList(ctx context.Context, args []string) error {
	fs, cfg := e.flags("files list")
	brand := fs.String("brand", "", "only this brand's files")
	status := fs.String("status", "", "only files that ended so: RECEIVED, COMPLETED, DUPLICATE_FILE or QUARANTINED")
	since := fs.String("since", "", "only files received since: a time, a date, or how long ago (24h, 7d)")
	limit := fs.Int("limit", 50, "at most this many files, the newest (1 to 1000)")
	format := fs.String("format", "text", "text or json")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("files list takes no arguments")
	}
	if err := checkFormat("list", *format); err != nil {
		return err
	}
	q := ledger.FileQuery{Brand: *brand, Status: outcome.FileStatus(strings.ToUpper(*status)), Limit: *limit}
	switch q.Status {
	case "", outcome.Received, outcome.Completed, outcome.DuplicateFile, outcome.Quarantined:
	default:
		return usagef("files list: --status is RECEIVED, COMPLETED, DUPLICATE_FILE or QUARANTINED, not %q", *status)
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("files list: --limit is 1 to 1000")
	}
	if *since != "" {
		if q.Since, err = parseSince(*since, time.Now()); err != nil {
			return usagef("files list: --since: %v", err)
		}
	}
	if *brand != "" {
		if _, err := e.cfg.Brand(*brand); err != nil {
			return err
		}
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	files, err := l.ListFiles(ctx, q)
	if err != nil {
		return err
	}
	if *format == "json" {
		out := make([]fileJSON, len(files))
		for i, f := range files {
			out[i] = newFileJSON(f)
		}
		return writeJSON(e.stdout, out)
	}
	if len(files) == 0 {
		fmt.Fprintln(e.stdout, "no files")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tBRAND\tSOURCE\tSTATUS\tROWS\tAPPLIED\tREJECTED\tDUPLICATE\tLINK\tNAME")
	for _, f := range files {
		rows := []string{"-", "-", "-", "-"}
		if f.Status == outcome.Completed && f.Kind != ledger.KindArchive {
			rows = []string{strconv.Itoa(f.Rows), strconv.Itoa(f.Applied), strconv.Itoa(f.Rejected), strconv.Itoa(f.Duplicate)}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.ReceivedAt.UTC().Format(time.RFC3339), f.Brand,
			safetext.Printable(f.Source), f.Status, strings.Join(rows, "\t"), link(f)+"\t"+safetext.Printable(f.Name))
	}
	return tw.Flush()
}

// link is what a file is to another, in a word: "retry:12", "reprocess:10",
// "archive:9" (split from it), "duplicate:7", or "-".
func link(f ledger.ReceivedFile) string {
	switch {
	case f.RetryOf != 0:
		return fmt.Sprintf("retry:%d", f.RetryOf)
	case f.ReprocessOf != 0:
		return fmt.Sprintf("reprocess:%d", f.ReprocessOf)
	case f.Parent != 0:
		return fmt.Sprintf("archive:%d", f.Parent)
	case f.DuplicateOf != 0:
		return fmt.Sprintf("duplicate:%d", f.DuplicateOf)
	}
	return "-"
}

// fileJSON is a received file as --format json writes it.
type fileJSON struct {
	ID          int64              `json:"id"`
	Brand       string             `json:"brand"`
	Source      string             `json:"source"`
	Name        string             `json:"name"`
	Size        int64              `json:"size"`
	SHA256      string             `json:"sha256,omitempty"`
	BytesKept   bool               `json:"bytes_kept"`
	Status      outcome.FileStatus `json:"status"`
	Kind        string             `json:"kind,omitempty"`
	Code        string             `json:"code,omitempty"`
	Reason      string             `json:"reason,omitempty"`
	ReceivedAt  time.Time          `json:"received_at"`
	FinishedAt  *time.Time         `json:"finished_at,omitempty"`
	AnsweredAt  *time.Time         `json:"answered_at,omitempty"`
	Actor       string             `json:"actor,omitempty"`
	Rows        *rowCounts         `json:"rows,omitempty"`
	DuplicateOf int64              `json:"duplicate_of,omitempty"`
	ReprocessOf int64              `json:"reprocess_of,omitempty"`
	RetryOf     int64              `json:"retry_of,omitempty"`
	Parent      int64              `json:"archive,omitempty"`
	// Of files show only.
	ByCode   map[outcome.Code]int `json:"by_code,omitempty"`
	Children []fileLinkJSON       `json:"files,omitempty"`
	Reruns   []fileLinkJSON       `json:"reruns,omitempty"`
	History  []auditJSON          `json:"history,omitempty"`
}

type rowCounts struct {
	Total     int `json:"total"`
	Applied   int `json:"applied"`
	Rejected  int `json:"rejected"`
	Duplicate int `json:"duplicate"`
}

type fileLinkJSON struct {
	ID     int64              `json:"id"`
	What   string             `json:"what"` // file, reprocess, retry
	Status outcome.FileStatus `json:"status"`
	Name   string             `json:"name"`
}

type auditJSON struct {
	At     time.Time      `json:"at"`
	Actor  string         `json:"actor"`
	Action string         `json:"action"`
	Detail map[string]any `json:"detail,omitempty"`
}

func newFileJSON(f ledger.ReceivedFile) fileJSON {
	j := fileJSON{ID: f.ID, Brand: f.Brand, Source: safetext.Printable(f.Source), Name: safetext.Printable(f.Name),
		Size: f.Size, SHA256: hex.EncodeToString(f.SHA256), BytesKept: f.BytesKept, Status: f.Status, Kind: f.Kind,
		Code: string(f.Code), Reason: f.Reason, ReceivedAt: f.ReceivedAt.UTC(), Actor: f.Actor,
		DuplicateOf: f.DuplicateOf, ReprocessOf: f.ReprocessOf, RetryOf: f.RetryOf, Parent: f.Parent}
	if !f.FinishedAt.IsZero() {
		t := f.FinishedAt.UTC()
		j.FinishedAt = &t
	}
	if !f.AnsweredAt.IsZero() {
		t := f.AnsweredAt.UTC()
		j.AnsweredAt = &t
	}
	if f.Status == outcome.Completed && f.Kind != ledger.KindArchive {
		j.Rows = &rowCounts{Total: f.Rows, Applied: f.Applied, Rejected: f.Rejected, Duplicate: f.Duplicate}
	}
	return j
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) filesShow(ctx context.Context, args []string) error {
	fs, cfg := e.flags("files show")
	format := fs.String("format", "text", "text or json")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	id, err := fileIDArg("show", pos)
	if err != nil {
		return err
	}
	if err := checkFormat("show", *format); err != nil {
		return err
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	f, err := l.ReceivedFile(ctx, id)
	if err != nil {
		return err
	}
	j := newFileJSON(f)
	if f.Status == outcome.Completed && f.Kind != ledger.KindArchive {
		sum, err := l.FileSummary(ctx, f.ID)
		if err != nil {
			return err
		}
		j.ByCode = sum.ByCode
	}
	children, err := l.ChildFiles(ctx, f.ID)
	if err != nil {
		return err
	}
	for _, c := range children {
		j.Children = append(j.Children, fileLinkJSON{ID: c.ID, What: "file", Status: c.Status, Name: safetext.Printable(c.Name)})
	}
	reruns, err := l.Reruns(ctx, f.ID)
	if err != nil {
		return err
	}
	for _, r := range reruns {
		what := "reprocess"
		if r.RetryOf != 0 {
			what = "retry"
		}
		j.Reruns = append(j.Reruns, fileLinkJSON{ID: r.ID, What: what, Status: r.Status, Name: safetext.Printable(r.Name)})
	}
	audit, err := l.FileAudit(ctx, f.ID)
	if err != nil {
		return err
	}
	for _, a := range audit {
		j.History = append(j.History, auditJSON{At: a.At.UTC(), Actor: a.Actor, Action: a.Action, Detail: a.Detail})
	}
	if *format == "json" {
		return writeJSON(e.stdout, j)
	}
	e.printFile(j)
	return nil
}

// printFile writes files show's text: a line per fact, the facts a file
// does not have left out.
func (e *env) printFile(j fileJSON) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	line("file", "%d", j.ID)
	line("name", "%s", j.Name)
	line("brand", "%s", j.Brand)
	line("source", "%s", j.Source)
	status := string(j.Status)
	if j.Kind != "" {
		status += " (" + j.Kind + ")"
	}
	line("status", "%s", status)
	if j.Code != "" {
		line("code", "%s", j.Code)
	}
	if j.Reason != "" {
		line("reason", "%s", safetext.Printable(j.Reason))
	}
	kept := "its bytes kept"
	if !j.BytesKept {
		kept = "its bytes not kept"
	}
	line("size", "%d bytes, %s", j.Size, kept)
	if j.SHA256 != "" {
		line("sha256", "%s", j.SHA256)
	}
	line("received", "%s", j.ReceivedAt.Format(time.RFC3339))
	if j.FinishedAt != nil {
		line("finished", "%s (%s after it was received)", j.FinishedAt.Format(time.RFC3339),
			j.FinishedAt.Sub(j.ReceivedAt).Round(time.Millisecond))
	}
	switch {
	case j.AnsweredAt != nil && j.Source == "cli":
		line("answered", "nothing to send: the command line's file (files download %d --result)", j.ID)
	case j.AnsweredAt != nil:
		line("answered", "%s", j.AnsweredAt.Format(time.RFC3339))
	case j.Status != outcome.Received && j.Actor != "":
		line("answered", "not yet (files answer %d)", j.ID)
	}
	if j.Actor != "" {
		line("asked by", "%s", safetext.Printable(j.Actor))
	}
	if j.Rows != nil {
		line("rows", "%d: applied %d, rejected %d, duplicate %d", j.Rows.Total, j.Rows.Applied, j.Rows.Rejected, j.Rows.Duplicate)
		codes := make([]string, 0, len(j.ByCode))
		for c := range j.ByCode {
			codes = append(codes, string(c))
		}
		slices.Sort(codes)
		for _, c := range codes {
			line("", "  %-28s %d", c, j.ByCode[outcome.Code(c)])
		}
	}
	if j.DuplicateOf != 0 {
		line("duplicate of", "file %d", j.DuplicateOf)
	}
	if j.ReprocessOf != 0 {
		line("reprocess of", "file %d", j.ReprocessOf)
	}
	if j.RetryOf != 0 {
		line("retry of", "file %d", j.RetryOf)
	}
	if j.Parent != 0 {
		line("archive", "file %d (split from it)", j.Parent)
	}
	for i, c := range j.Children {
		k := ""
		if i == 0 {
			k = "files"
		}
		line(k, "file %d %s %s", c.ID, c.Status, c.Name)
	}
	for i, r := range j.Reruns {
		k := ""
		if i == 0 {
			k = "run again"
		}
		line(k, "file %d, a %s: %s", r.ID, r.What, r.Status)
	}
	for i, a := range j.History {
		k := ""
		if i == 0 {
			k = "history"
		}
		detail, _ := json.Marshal(a.Detail)
		line(k, "%s %s %s %s", a.At.Format(time.RFC3339), safetext.Printable(a.Actor), a.Action, detail)
	}
	tw.Flush()
}

func (e *env) filesDownload(ctx context.Context, args []string) error {
	flags, cfg := e.flags("files download")
	result := flags.Bool("result", false, "the result file (or the receipt of a quarantined file), not the bytes received")
	out := flags.String("o", "", "write to FILE (- for stdout); default: the file's name in the current folder, never overwritten")
	pos, err := e.parse(flags, cfg, args)
	if err != nil {
		return err
	}
	id, err := fileIDArg("download", pos)
	if err != nil {
		return err
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	f, err := l.ReceivedFile(ctx, id)
	if err != nil {
		return err
	}
	name := downloadName(f, *result)
	path := *out
	if path == "" {
		path = name
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is there already: say where with -o FILE", path)
		}
	}
	w, err := createResult(path, e.stdout)
	if err != nil {
		return err
	}
	defer w.discard()
	if *result {
		err = e.writeAnswer(ctx, l, f, w.tmp)
	} else {
		err = writeOriginal(ctx, l, f, w.tmp)
	}
	if err != nil {
		return err
	}
	if err := w.commit(); err != nil {
		return err
	}
	if path != "-" {
		fmt.Fprintf(e.stdout, "file %d: %s\n", f.ID, path)
	}
	return nil
}

// downloadName is the name a download is saved under by default: the
// file's own (its base name; file-<id> when it is not a plain name), or its
// result's or receipt's as the brand got it.
func downloadName(f ledger.ReceivedFile, result bool) string {
	name := filepath.Base(f.Name)
	if !ingest.SafeName(name) || name != safetext.Printable(name) {
		name = fmt.Sprintf("file-%d", f.ID)
	}
	switch {
	case result && f.Status == outcome.Quarantined:
		return filename.Receipt(name, f.ID)
	case result:
		return filename.Result(name, f.ID)
	}
	return name
}

func writeOriginal(ctx context.Context, l *ledger.Ledger, f ledger.ReceivedFile, w io.Writer) error {
	if !f.BytesKept {
		why := "they stayed at the source"
		if f.DuplicateOf != 0 {
			why = fmt.Sprintf("they are file %d's", f.DuplicateOf)
		}
		return fmt.Errorf("file %d: its bytes were not kept: %s", f.ID, why)
	}
	return l.FileBytes(ctx, f.ID, w)
}

// writeAnswer writes what the brand got for a file: its result (a
// duplicate's is its original's), or a quarantined file's receipt.
func (e *env) writeAnswer(ctx context.Context, l *ledger.Ledger, f ledger.ReceivedFile, w *os.File) error {
	b, err := e.cfg.Brand(f.Brand)
	if err != nil {
		return err
	}
	p := e.pipeline(l)
	switch {
	case f.Status == outcome.Received:
		return fmt.Errorf("file %d is not applied yet: it has no result", f.ID)
	case f.Status == outcome.Quarantined:
		return p.WriteReceipt(f, pipeline.Format(b), w)
	case f.Kind == ledger.KindArchive:
		children, err := l.ChildFiles(ctx, f.ID)
		if err != nil {
			return err
		}
		ids := make([]string, len(children))
		for i, c := range children {
			ids[i] = strconv.FormatInt(c.ID, 10)
		}
		return fmt.Errorf("file %d is an archive split into files %s: download each one's result", f.ID, strings.Join(ids, ", "))
	}
	_, err = p.WriteResult(ctx, f, pipeline.Format(b), w)
	return err
}

// rerunPoller is a poller that applies and answers a rerun here and now,
// through the file's own source.
func (e *env) rerunPoller(l *ledger.Ledger) *poller.Poller {
	return &poller.Poller{Ledger: l, Files: e.pipeline(l), Config: e.cfg, Logger: e.logger,
		OpenSource: func(sc *config.Source) (ingest.Source, error) { return sources.Open(sc, &e.cfg.SMTP) }}
}

// filesRerun is files reprocess and files retry-rejected: the new file is
// applied (after its brand's files that came before it) and answered to the
// brand here and now, in the name of --actor.
func (e *env) filesRerun(ctx context.Context, cmd string, args []string) error {
	fs, cfg := e.flags("files " + cmd)
	actor := fs.String("actor", "", "who asks, for the ledger and the audit log (default: cli:$USER)")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	id, err := fileIDArg(cmd, pos)
	if err != nil {
		return err
	}
	who := *actor
	if who == "" {
		who = e.actor()
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	p := e.rerunPoller(l)
	var r poller.Rerun
	what := "a reprocess"
	if cmd == "reprocess" {
		r, err = p.Reprocess(ctx, id, who)
	} else {
		what = "a retry of the rejected rows"
		r, err = p.RetryRejected(ctx, id, who)
	}
	if err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "file %d: %s of file %d, asked by %s\n", r.File.ID, what, r.Of, safetext.Printable(who))
	if r.Rows > 0 {
		fmt.Fprintf(w, "  rows %d, at their lines in file %d\n", r.Rows, r.Of)
	}
	res := r.Result
	switch res.Status {
	case outcome.Quarantined:
		fmt.Fprintf(w, "QUARANTINED again: %s: %s\n", res.Code, safetext.Printable(res.Reason))
	case outcome.Completed:
		s := res.Summary
		fmt.Fprintf(w, "COMPLETED: rows %d: applied %d, rejected %d, duplicate %d\n", s.Rows, s.Applied, s.Rejected, s.Duplicate)
		codes := make([]string, 0, len(s.ByCode))
		for c := range s.ByCode {
			codes = append(codes, string(c))
		}
		slices.Sort(codes)
		for _, c := range codes {
			fmt.Fprintf(w, "  %-28s %d\n", c, s.ByCode[outcome.Code(c)])
		}
	default:
		fmt.Fprintf(w, "%s\n", res.Status)
	}
	switch {
	case r.AnswerErr != nil:
		return fmt.Errorf("file %d was applied but its answer did not reach the brand: %w; "+
			"once it can, run returnsd files answer %d", r.File.ID, r.AnswerErr, r.File.ID)
	case r.File.Source == "cli":
		fmt.Fprintf(w, "  no source to answer through (the command line's file): returnsd files download %d --result\n", r.File.ID)
	default:
		fmt.Fprintf(w, "  answered through source %s\n", safetext.Printable(r.File.Source))
	}
	if res.Status == outcome.Quarantined {
		return &quarantinedError{fmt.Sprintf("file %d quarantined again: %s", r.File.ID, res.Code)}
	}
	return nil
}

func (e *env) filesAnswer(ctx context.Context, args []string) error {
	fs, cfg := e.flags("files answer")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	id, err := fileIDArg("answer", pos)
	if err != nil {
		return err
	}
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := e.rerunPoller(l).Answer(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "file %d: answered\n", id)
	return nil
}
