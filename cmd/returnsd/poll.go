package main

import (
	"context"
	"fmt"

	"github.com/returnsd/returnsd/ingest/sources"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/poller"
)

// poll is `returnsd poll [--config C] SOURCE`: poll one source now and apply what it
// finds, one line per file. The daemon's schedules call the same Poller.PollOnce.
func (e *env) poll(ctx context.Context, args []string) error {
	fs, cfg := e.flags("poll")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("poll: give exactly one SOURCE")
	}
	sc, err := e.cfg.Source(pos[0])
	if err != nil {
		return err
	}
	src, err := sources.Open(sc, &e.cfg.SMTP)
	if err != nil {
		return err
	}
	defer src.Close()
	l, err := e.openLedger(ctx)
	if err != nil {
		return err
	}
	defer l.Close()
	// Asked for by a person: polled now even if the source is backed off, and
	// every file taken is applied and answered before the command returns.
	p := &poller.Poller{Ledger: l, Files: e.pipeline(l), Config: e.cfg, Logger: e.logger, IgnoreBackoff: true}
	rep, err := p.PollOnce(ctx, src, sc, poller.PollOptions{})
	// Names and errors come from the source: printed as they are, a name with a
	// tab and a newline in it would forge a line of this report.
	for _, f := range rep.Files {
		line := fmt.Sprintf("%s\t%s", safetext.Printable(f.Name), f.Status)
		switch {
		case f.Err != nil:
			line += "\t" + safetext.Printable(f.Err.Error())
		case f.Result.FileID != 0:
			s := f.Result.Summary
			line += fmt.Sprintf("\tfile %d", f.Result.FileID)
			if f.Status == "COMPLETED" {
				line += fmt.Sprintf("\trows %d: applied %d, rejected %d, duplicate %d", s.Rows, s.Applied, s.Rejected, s.Duplicate)
			}
			if f.Result.Reason != "" {
				line += "\t" + safetext.Printable(f.Result.Reason)
			}
		case f.Result.Reason != "": // refused before it reached a brand's ledger (no route)
			line += "\t" + string(f.Result.Code) + ": " + safetext.Printable(f.Result.Reason)
		}
		if f.AckErr != nil {
			line += "\tnot yet acknowledged: " + safetext.Printable(f.AckErr.Error())
		}
		fmt.Fprintln(e.stdout, line)
	}
	if err == nil && len(rep.Files) == 0 {
		fmt.Fprintf(e.stdout, "%s: no new files\n", sc.Name)
	}
	return err
}
