package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// fileCommand is apply or import: one file through the pipeline, a summary on stdout.
type fileCommand struct {
	fs     *flag.FlagSet
	config *string
	brand  *string
	dryRun *bool
	result *string
	kind   processors.Kind // empty: detected from the header
}

func (e *env) newFileCommand(name, brandHelp string, kind processors.Kind) *fileCommand {
	fs, cfg := e.flags(name)
	c := &fileCommand{fs: fs, config: cfg, kind: kind, dryRun: new(bool)}
	c.brand = fs.String("brand", "", brandHelp)
	c.result = fs.String("result", "", "result file (default: result_<name>.csv next to FILE; - for stdout)")
	return c
}

func (e *env) apply(ctx context.Context, args []string) error {
	c := e.newFileCommand("apply", "the brand whose file it is (required)", "")
	c.fs.BoolVar(c.dryRun, "dry-run", false, "validate against the ledger and write the result file, changing nothing")
	c.fs.Func("kind", "action-updates or inquiry-resolutions (default: decided by the header)", func(s string) error {
		switch k := processors.Kind(s); k {
		case processors.ActionUpdates, processors.InquiryResolutions:
			c.kind = k
			return nil
		}
		return fmt.Errorf("%q is not action-updates or inquiry-resolutions", s)
	})
	return e.runFileCommand(ctx, c, args)
}

func (e *env) importInquiries(ctx context.Context, args []string) error {
	c := e.newFileCommand("import inquiries", "the brand the inquiries are for (required)", processors.Inquiries)
	return e.runFileCommand(ctx, c, args)
}

func (e *env) importActions(ctx context.Context, args []string) error {
	c := e.newFileCommand("import actions", "the brand whose actions these are (required)", processors.Actions)
	return e.runFileCommand(ctx, c, args)
}

func (e *env) runFileCommand(ctx context.Context, c *fileCommand, args []string) error {
	pos, err := e.parse(c.fs, c.config, args)
	if err != nil {
		return err
	}
	if *c.brand == "" {
		return usagef("%s: --brand is required", c.fs.Name())
	}
	if len(pos) != 1 {
		return usagef("%s: give exactly one FILE", c.fs.Name())
	}
	path := pos[0]
	b, l, err := e.openBrandLedger(ctx, *c.brand)
	if err != nil {
		return err
	}
	defer l.Close()

	resultPath := *c.result
	if resultPath == "" {
		resultPath = filepath.Join(filepath.Dir(path), filename.Result(path, 0))
	}
	out, err := createResult(resultPath, e.stdout)
	if err != nil {
		return err
	}
	defer out.discard()
	bar := newProgressBar(e.stderr)
	format := pipeline.Format(b)
	if c.kind == processors.Actions || c.kind == processors.Inquiries {
		format = pipeline.ExportFormat(b) // the platform's export, not the brand's file
	}
	res, err := e.pipeline(l).Process(ctx, pipeline.Params{
		Brand: b.ID, Format: format, Source: "cli", Actor: e.actor(), Path: path,
		Kind: c.kind, DryRun: *c.dryRun, Result: out.tmp, Progress: bar.update,
	})
	bar.done()
	if err != nil {
		return err
	}
	wroteResult := res.WroteResult
	if wroteResult {
		if err := out.commit(); err != nil {
			return err
		}
	}
	e.printSummary(res, *c.dryRun, wroteResult, resultPath)
	if res.Status == outcome.Quarantined {
		return &quarantinedError{fmt.Sprintf("%s quarantined: %s: %s", filepath.Base(path), res.Code, res.Reason)}
	}
	return nil
}

func (e *env) printSummary(res pipeline.Result, dryRun, wroteResult bool, resultPath string) {
	w := e.stdout
	if resultPath == "-" {
		w = e.stderr // stdout carries the result file
	}
	prefix := ""
	if dryRun {
		prefix = "dry run: "
	}
	switch res.Status {
	case outcome.DuplicateFile:
		fmt.Fprintf(w, "%sDUPLICATE_FILE (file %d): %s; nothing changed\n", prefix, res.FileID, res.Reason)
		if wroteResult && resultPath != "-" {
			fmt.Fprintf(w, "  result (of file %d): %s\n", res.DuplicateOf, resultPath)
		}
		return
	case outcome.Quarantined:
		fmt.Fprintf(w, "%sQUARANTINED (file %d): %s: %s\n", prefix, res.FileID, res.Code, res.Reason)
		return
	}
	s := res.Summary
	if dryRun {
		fmt.Fprintf(w, "dry run: %s, nothing changed\n", res.Kind)
	} else {
		fmt.Fprintf(w, "%s (file %d): %s\n", res.Status, res.FileID, res.Kind)
	}
	fmt.Fprintf(w, "  rows %d: applied %d, rejected %d, duplicate %d\n", s.Rows, s.Applied, s.Rejected, s.Duplicate)
	codes := make([]string, 0, len(s.ByCode))
	for c := range s.ByCode {
		codes = append(codes, string(c))
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  %-28s %d\n", c, s.ByCode[outcome.Code(c)])
	}
	if wroteResult && resultPath != "-" {
		fmt.Fprintf(w, "  result: %s\n", resultPath)
	}
}

// resultFile is a result file being written: to a temporary file of its own,
// which becomes the result only once whole (renamed over a regular file, or
// copied into stdout, a device or a pipe, which must never be replaced).
type resultFile struct {
	tmp    *os.File
	path   string    // "" for stdout
	stdout io.Writer // for "-"
	rename bool
}

// createResult prepares the result file for path ("-" is stdout). Its temporary
// name is unique (runs of the same file at once do not share it) and short (a
// long input name cannot push it past the file system's limit), and it is one
// of ours (".result_*"), so a source polling the folder never takes it.
func createResult(path string, stdout io.Writer) (*resultFile, error) {
	r := &resultFile{path: path, stdout: stdout}
	dir := ""
	if path != "-" {
		info, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.rename = true
		case err != nil:
			return nil, fmt.Errorf("result file: %w", err)
		case info.IsDir():
			return nil, fmt.Errorf("result file: %s is a folder", path)
		default:
			r.rename = info.Mode().IsRegular()
		}
		if r.rename {
			dir = filepath.Dir(path)
		}
	}
	tmp, err := os.CreateTemp(dir, ".result_*.tmp")
	if err != nil {
		return nil, fmt.Errorf("result file: %w", err)
	}
	r.tmp = tmp
	return r, nil
}

// commit makes the written result the file at path.
func (r *resultFile) commit() error {
	if r.rename {
		if err := r.tmp.Chmod(0o640); err != nil {
			return err
		}
		if err := r.tmp.Close(); err != nil {
			return err
		}
		return os.Rename(r.tmp.Name(), r.path)
	}
	if _, err := r.tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var w io.Writer = r.stdout
	if r.path != "-" {
		f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return fmt.Errorf("result file: %w", err)
		}
		defer f.Close()
		w = f
	}
	_, err := io.Copy(w, r.tmp)
	return err
}

// discard removes the temporary file, if commit has not renamed it away.
func (r *resultFile) discard() {
	r.tmp.Close()
	os.Remove(r.tmp.Name())
}
