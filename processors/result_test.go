package processors

import (
	"bytes"
	"encoding/csv"
	"slices"
	"testing"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

func TestEscapeCell(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"LeavesPlainTextAlone", "ORD-1", "ORD-1"},
		{"LeavesEmptyAlone", "", ""},
		{"DefusesAFormula", "=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
		{"DefusesAPlus", "+1+2", "'+1+2"},
		{"DefusesAMinus", "-2+3", "'-2+3"},
		{"DefusesAnAt", "@SUM(A1)", "'@SUM(A1)"},
		{"DefusesALeadingTab", "\t=1", "'\t=1"},
		{"DefusesALeadingCarriageReturn", "\r=1", "'\r=1"},
		{"LeavesAFormulaCharacterInsideAlone", "a=b", "a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EscapeCell(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResultWriter(t *testing.T) {
	var b bytes.Buffer
	w, err := NewResultWriter(&b, []string{"ActionId", "Reason", "=cmd"}, ResultFormat{Comma: ','})
	if err != nil {
		t.Fatal(err)
	}
	old, neu := money.Amount(4590), money.Amount(0)
	rows := []struct {
		fields []string
		row    outcome.Row
	}{
		{[]string{"1001", "ITEM_RETURNED"}, outcome.Row{Line: 2, Outcome: outcome.Applied, ActionID: 1001,
			OldAmount: &old, NewAmount: &neu, OldPayout: &old, NewPayout: &neu}},
		{[]string{"x", "OTHER", "=1+1", "surplus"}, outcome.Row{Line: 3, Outcome: outcome.Rejected,
			Code: outcome.InvalidActionID, Message: `ActionId "x" is not a whole number above 0`}},
	}
	for _, r := range rows {
		if err := w.Write(r.fields, r.row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(b.Bytes(), []byte("\xEF\xBB\xBF")) {
		t.Error("the result file starts with a BOM")
	}
	if !bytes.Contains(b.Bytes(), []byte("\r\n")) {
		t.Error("the result file does not use CRLF")
	}
	got, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"ActionId", "Reason", "'=cmd", "Line", "Outcome", "ErrorCode", "Message", "ResultActionId", "OldAmount", "NewAmount", "OldPayout", "NewPayout"},
		{"1001", "ITEM_RETURNED", "", "2", "APPLIED", "", "", "1001", "45.90", "0.00", "45.90", "0.00"},
		{"x", "OTHER", "'=1+1", "3", "REJECTED", "INVALID_ACTION_ID", `ActionId "x" is not a whole number above 0`, "", "", "", "", ""},
	}
	for i := range want {
		if i >= len(got) || !slices.Equal(got[i], want[i]) {
			t.Errorf("row %d:\ngot  %q\nwant %q", i, got[min(i, len(got)-1)], want[i])
		}
	}
}
