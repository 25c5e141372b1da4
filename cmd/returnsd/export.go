package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"time"

	"github.com/returnsd/returnsd/ledger"
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
	bw := bufio.NewWriterSize(e.stdout, 64<<10)
	record := func(a ledger.Action) []string {
		return []string{strconv.FormatInt(a.ID, 10), a.Oid, strconv.FormatInt(a.TrackerID, 10),
			strconv.FormatInt(a.PartnerID, 10), a.State, a.Amount.String(), a.Payout.String(), a.Currency,
			date(a.LockDate), date(a.PayoutDate), strconv.Itoa(a.ModificationCount)}
	}
	if *format == "csv" {
		w := csv.NewWriter(bw)
		w.Write(exportColumns)
		err = l.ExportActions(ctx, b.ID, func(a ledger.Action) error {
			rec := record(a)
			for i := range rec {
				rec[i] = processors.EscapeCell(rec[i])
			}
			return w.Write(rec)
		})
		w.Flush()
		if err == nil {
			err = w.Error()
		}
	} else {
		// A JSON array, one action per line; amounts are strings so no reader turns them into floats.
		bw.WriteString("[")
		first := true
		err = l.ExportActions(ctx, b.ID, func(a ledger.Action) error {
			rec := record(a)
			obj := make(map[string]any, len(exportColumns))
			for i, c := range exportColumns {
				obj[c] = rec[i]
			}
			obj["ActionId"], obj["ActionTrackerId"], obj["PartnerId"], obj["ModificationCount"] =
				a.ID, a.TrackerID, a.PartnerID, a.ModificationCount
			line, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			if !first {
				bw.WriteString(",")
			}
			first = false
			bw.WriteString("\n")
			bw.Write(line)
			return nil
		})
		bw.WriteString("\n]\n")
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}
