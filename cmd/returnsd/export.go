package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/processors"
)

var exportColumns = []string{"ActionId", "Oid", "ActionTrackerId", "PartnerId", "State", "Amount", "Payout",
	"Currency", "LockDate", "PayoutDate", "ModificationCount"}

func (e *env) exportActions(ctx context.Context, args []string) error {
	fs, cfg := e.flags("export actions")
	brand := fs.String("brand", "", "the brand whose actions to export (required)")
	format := fs.String("format", "csv", "csv or json")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	if *brand == "" {
		return usagef("export actions: --brand is required")
	}
	if len(pos) > 0 {
		return usagef("export actions takes no arguments")
	}
	if *format != "csv" && *format != "json" {
		return usagef("export actions: --format is csv or json, not %q", *format)
	}
	b, l, err := e.openBrandLedger(ctx, *brand)
	if err != nil {
		return err
	}
	defer l.Close()

	loc := b.Location()
	date := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(loc).Format(time.RFC3339)
	}
	x := newExportWriter(e.stdout, *format, exportColumns)
	err = l.ExportActions(ctx, b.ID, func(a ledger.Action) error {
		return x.write([]string{strconv.FormatInt(a.ID, 10), a.Oid, strconv.FormatInt(a.TrackerID, 10),
			strconv.FormatInt(a.PartnerID, 10), a.State, a.Amount.String(), a.Payout.String(), a.Currency,
			date(a.LockDate), date(a.PayoutDate), strconv.Itoa(a.ModificationCount)},
			map[string]any{"ActionId": a.ID, "ActionTrackerId": a.TrackerID, "PartnerId": a.PartnerID,
				"ModificationCount": a.ModificationCount})
	})
	return x.close(err)
}

var inquiryExportColumns = []string{"Inquiry Id", "PartnerId", "Order Id", "Action Tracker", "Transaction Date",
	"Sale Amount", "Expected Payout", "Type", "Submission Date", "Status", "Resolution Reason", "Resolution Notes",
	"ActionId", "Resolved At", "Resolved By"}

// exportInquiries prints every inquiry of a brand and what became of it, for
// reconciliation with the partners' side.
func (e *env) exportInquiries(ctx context.Context, args []string) error {
	fs, cfg := e.flags("export inquiries")
	brand := fs.String("brand", "", "the brand whose inquiries to export (required)")
	format := fs.String("format", "csv", "csv or json")
	pos, err := e.parse(fs, cfg, args)
	if err != nil {
		return err
	}
	switch {
	case *brand == "":
		return usagef("export inquiries: --brand is required")
	case len(pos) > 0:
		return usagef("export inquiries takes no arguments")
	case *format != "csv" && *format != "json":
		return usagef("export inquiries: --format is csv or json, not %q", *format)
	}
	b, l, err := e.openBrandLedger(ctx, *brand)
	if err != nil {
		return err
	}
	defer l.Close()
	loc := b.Location()
	amount := func(a *money.Amount) string {
		if a == nil {
			return ""
		}
		return a.String()
	}
	x := newExportWriter(e.stdout, *format, inquiryExportColumns)
	err = l.ExportInquiries(ctx, b.ID, func(q ledger.Inquiry) error {
		tracker, action, resolved := "", "", ""
		if q.TrackerID != 0 {
			tracker = strconv.FormatInt(q.TrackerID, 10)
		}
		if q.ActionID != 0 {
			action = strconv.FormatInt(q.ActionID, 10)
		}
		if q.ResolvedAt != nil {
			resolved = q.ResolvedAt.In(loc).Format(time.RFC3339)
		}
		return x.write([]string{q.InquiryID, strconv.FormatInt(q.PartnerID, 10), q.Oid, tracker,
			q.TransactionDate.In(loc).Format(time.RFC3339), amount(q.SaleAmount), amount(q.ExpectedPayout), q.Type,
			q.SubmittedAt.In(loc).Format(time.RFC3339), q.Status, q.ResolutionReason, q.ResolutionNotes, action,
			resolved, q.ResolvedBy}, map[string]any{"PartnerId": q.PartnerID})
	})
	return x.close(err)
}

// exportWriter writes an export as CSV, every cell escaped against spreadsheet
// formulas, or as a JSON array with one object per line. Amounts stay strings in
// JSON so no reader turns them into floats; typed gives the values that are
// numbers there.
type exportWriter struct {
	bw      *bufio.Writer
	csv     *csv.Writer // nil for JSON
	columns []string
	rows    int
}

func newExportWriter(w io.Writer, format string, columns []string) *exportWriter {
	x := &exportWriter{bw: bufio.NewWriterSize(w, 64<<10), columns: columns}
	if format == "csv" {
		x.csv = csv.NewWriter(x.bw)
		x.csv.Write(columns)
	} else {
		x.bw.WriteString("[")
	}
	return x
}

func (x *exportWriter) write(rec []string, typed map[string]any) error {
	x.rows++
	if x.csv != nil {
		for i := range rec {
			rec[i] = processors.EscapeCell(rec[i])
		}
		return x.csv.Write(rec)
	}
	obj := make(map[string]any, len(x.columns))
	for i, c := range x.columns {
		obj[c] = rec[i]
	}
	for k, v := range typed {
		obj[k] = v
	}
	line, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if x.rows > 1 {
		x.bw.WriteString(",")
	}
	x.bw.WriteString("\n")
	x.bw.Write(line)
	return nil
}

// close ends the export; err is the export's own error, returned first.
func (x *exportWriter) close(err error) error {
	if x.csv != nil {
		x.csv.Flush()
		if err == nil {
			err = x.csv.Error()
		}
	} else {
		x.bw.WriteString("\n]\n")
	}
	if err != nil {
		return err
	}
	return x.bw.Flush()
}
