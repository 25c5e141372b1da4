package pipeline_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/returnsd/returnsd/outcome"
)

// updatesWorkbook is an update file as a spreadsheet saves it: a header and a row
// per action given, each setting a new amount.
func updatesWorkbook(t *testing.T, actions ...int) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	if err := f.SetSheetRow(sheet, "A1", &[]any{"ActionId", "Amount", "Reason"}); err != nil {
		t.Fatal(err)
	}
	for i, id := range actions {
		if err := f.SetSheetRow(sheet, fmt.Sprintf("A%d", i+2), &[]any{id, 10 + i, "ORDER_UPDATE"}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rezip rewrites a zip's entries through edit, with sound checksums: the damage
// edit does is inside a part, where only the part's own format can find it.
func rezip(t *testing.T, data []byte, edit func(name string, content []byte) []byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range zr.File {
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		out, err := w.Create(e.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := out.Write(edit(e.Name, content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWorkbooks(t *testing.T) {
	t.Parallel()

	t.Run("ASheetCutInsideRow7IsQuarantinedAsDamagedWithNothingApplied", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		whole := updatesWorkbook(t, 5001, 5002, 5003, 5005, 5006, 5007, 5008, 5009, 5010, 5001)
		damaged := rezip(t, whole, func(name string, content []byte) []byte {
			if name != "xl/worksheets/sheet1.xml" {
				return content
			}
			row7 := bytes.Index(content, []byte(`<row r="7"`))
			return content[:row7+20]
		})
		before := b.actions(t)
		events := b.queryInt(t, "SELECT count(*) FROM ledger_events")
		result := b.result(t)
		params := b.params(b.write(t, "returns.xlsx", damaged), "")
		params.Result = result

		res, err := p.Process(ctx, params)

		if err != nil {
			t.Fatal(err)
		}
		if res.Status != outcome.Quarantined || res.Code != outcome.DamagedFile ||
			!strings.Contains(res.Reason, "xl/worksheets/sheet1.xml") || !strings.Contains(res.Reason, "damaged at row 7") {
			t.Fatalf("result %+v, want QUARANTINED DAMAGED_FILE naming the sheet and row 7", res)
		}
		if after := b.actions(t); after != before {
			t.Errorf("rows 2 to 6, before the damage, were applied:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM ledger_events"); n != events {
			t.Errorf("%d ledger events, want %d as before", n, events)
		}
		if n := b.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id = $1", res.FileID); n != 0 {
			t.Errorf("%d row outcomes for a damaged file", n)
		}
		if n := b.queryInt(t, `SELECT count(*) FROM received_files WHERE id = $1 AND status = 'QUARANTINED'
			AND reason_code = 'DAMAGED_FILE'`, res.FileID); n != 1 {
			t.Error("the received file is not recorded as quarantined DAMAGED_FILE")
		}
		if result.Len() != 0 {
			t.Errorf("a result file was written for a damaged file:\n%s", result.String())
		}

		// The same workbook undamaged is applied whole: the rows were good.
		res, err = p.Process(ctx, b.params(b.write(t, "returns-again.xlsx", whole), ""))
		if err != nil || res.Status != outcome.Completed || res.Summary.Rows != 10 {
			t.Errorf("the undamaged workbook: %+v, %v; want COMPLETED with 10 rows", res, err)
		}
	})

	t.Run("AFormulaWithoutItsResultRejectsItsRowAndLeavesTheActionAlone", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		f := excelize.NewFile()
		defer f.Close()
		sheet := f.GetSheetName(0)
		for cell, v := range map[string]any{"A1": "ActionId", "B1": "Amount", "C1": "Reason",
			"A2": 5001, "C2": "ITEM_RETURNED", "A3": 5002, "B3": 55.5, "C3": "ITEM_RETURNED"} {
			if err := f.SetCellValue(sheet, cell, v); err != nil {
				t.Fatal(err)
			}
		}
		// A partial return computed in a tool that does not calculate: no cached value.
		if err := f.SetCellFormula(sheet, "B2", "100*0.6"); err != nil {
			t.Fatal(err)
		}
		var data bytes.Buffer
		if err := f.Write(&data); err != nil {
			t.Fatal(err)
		}
		before := b.actions(t)
		result := b.result(t)
		params := b.params(b.write(t, "partial.xlsx", data.Bytes()), "")
		params.Result = result

		res, err := p.Process(context.Background(), params)

		if err != nil {
			t.Fatal(err)
		}
		if res.Status != outcome.Completed || res.Summary.Rows != 2 || res.Summary.Applied != 1 ||
			res.Summary.ByCode[outcome.UnknownValue] != 1 {
			t.Fatalf("result %+v, want line 2 rejected UNKNOWN_VALUE and line 3 applied", res)
		}
		lines := strings.Split(result.String(), "\r\n")
		if !strings.HasPrefix(lines[1], `5001,'=100*0.6,ITEM_RETURNED,2,REJECTED,UNKNOWN_VALUE,"Amount is a formula (=100*0.6)`) {
			t.Errorf("result line %q", lines[1])
		}
		after := b.actions(t)
		if line := actionLine(after, "5001"); line != actionLine(before, "5001") {
			t.Errorf("action 5001 changed to %q, from %q", line, actionLine(before, "5001"))
		}
		if line := actionLine(after, "5002"); !strings.HasPrefix(line, "5002 PENDING 55.50 ") {
			t.Errorf("action 5002 is %q, want modified to 55.50", line)
		}
	})
}

// actionLine is one action's line of testBundle.actions.
func actionLine(actions, id string) string {
	for _, l := range strings.Split(actions, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}
