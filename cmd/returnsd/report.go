package main

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/returnsd/returnsd/report"
)

// reportCmd prints (or writes to -o FILE) the daily processing report of a day:
// by default yesterday's in the report's zone, what ops read in the morning.
func (e *env) reportCmd(ctx context.Context, args []string) error {
	fs, cfg := e.flags("report")
	date := fs.String("date", "yesterday", "the day: YYYY-MM-DD, today or yesterday, in the report's zone")
	brand := fs.String("brand", "", "only this brand (default: every brand)")
	format := fs.String("format", "", "html, csv or json (default: from -o's extension, else html)")
	tz := fs.String("tz", "", "the zone of the day and the times shown (default: the config's report.timezone, UTC)")
	out := fs.String("o", "-", "write the report to this file instead of stdout")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("report takes no arguments")
	}
	f := report.Format(*format)
	if f == "" {
		f = report.FormatHTML
		switch strings.ToLower(filepath.Ext(*out)) {
		case ".csv":
			f = report.FormatCSV
		case ".json":
			f = report.FormatJSON
		}
	}
	if f, err = report.ParseFormat(string(f), true); err != nil {
		return usagef("report: %v", err)
	}
	loc := e.cfg.Report.Location()
	if *tz != "" {
		if loc, err = time.LoadLocation(*tz); err != nil || *tz == "Local" {
			return usagef("report: --tz %q is not a known IANA time zone", *tz)
		}
	}
	now := time.Now()
	var day report.Date
	switch *date {
	case "yesterday":
		day = report.Yesterday(now, loc)
	case "today":
		day = report.DateOf(now.In(loc))
	default:
		if day, err = report.ParseDate(*date); err != nil {
			return usagef("report: --date: %v", err)
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
	r, err := report.Build(ctx, l, report.Params{Day: day, Location: loc, Brand: *brand, Now: now,
		SourceBrands: report.SourceBrands(e.cfg)})
	if err != nil {
		return err
	}
	w, err := createResult(*out, e.stdout)
	if err != nil {
		return err
	}
	defer w.discard()
	switch f {
	case report.FormatCSV:
		err = report.WriteCSV(w.tmp, r)
	case report.FormatJSON:
		err = report.WriteJSON(w.tmp, r)
	default:
		err = report.WriteHTML(w.tmp, r, report.HTMLOptions{})
	}
	if err != nil {
		return err
	}
	return w.commit()
}
