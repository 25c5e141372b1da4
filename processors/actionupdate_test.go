package processors

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// updateColumns is the header of the files the rule tests build.
var updateColumns = []string{"ActionId", "Oid", "ActionTrackerId", "Operation", "Amount",
	"CurrencyCode", "CustomerStatus", "Reason", "RequestId", "Note"}

// updateFile is a file with updateColumns and one row per cells map.
func updateFile(rows ...map[string]string) string {
	var b strings.Builder
	b.WriteString(strings.Join(updateColumns, ",") + "\n")
	for _, r := range rows {
		cells := make([]string, len(updateColumns))
		for i, c := range updateColumns {
			cells[i] = `"` + strings.ReplaceAll(r[c], `"`, `""`) + `"`
		}
		b.WriteString(strings.Join(cells, ",") + "\n")
	}
	return b.String()
}

// readUpdates reads every row of an action-update file.
func readUpdates(t testing.TB, text string, f Format) []ActionUpdate {
	t.Helper()
	tb, err := openBytes(t, []byte(text), "updates.csv", f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewActionUpdateReader(tb, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []ActionUpdate
	for {
		u, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
}

func TestActionUpdateRules(t *testing.T) {
	type cells = map[string]string
	tests := []struct {
		name  string
		row   cells
		code  outcome.Code // "" for a valid row
		check func(t *testing.T, u ActionUpdate)
		msg   string // part of the message of a rejected row
	}{
		// The action a row names.
		{"ActionIdNamesTheAction", cells{"ActionId": "123", "Reason": "ITEM_RETURNED"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.ActionID, int64(123)) }, ""},
		{"OidWithTrackerNamesTheAction", cells{"Oid": "ORD-1", "ActionTrackerId": "1001", "Reason": "ITEM_RETURNED"}, "",
			func(t *testing.T, u ActionUpdate) {
				wantEqual(t, u.Oid, "ORD-1")
				wantEqual(t, u.TrackerID, int64(1001))
			}, ""},
		{"ActionIdWinsOverAnOidBesideIt", cells{"ActionId": "9", "Oid": "ORD-1", "ActionTrackerId": "oops", "Reason": "OTHER"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.ActionID, int64(9)) }, ""},
		{"NeitherActionIdNorOidIsRejected", cells{"Reason": "ITEM_RETURNED"}, outcome.ActionReferenceRequired, nil, "names no action"},
		{"AnActionIdOfZeroIsRejected", cells{"ActionId": "0", "Reason": "ITEM_RETURNED"}, outcome.InvalidActionID, nil, `"0"`},
		{"AnActionIdOfLettersIsRejected", cells{"ActionId": "12a", "Reason": "ITEM_RETURNED"}, outcome.InvalidActionID, nil, `"12a"`},
		{"ANegativeActionIdIsRejected", cells{"ActionId": "-5", "Reason": "ITEM_RETURNED"}, outcome.InvalidActionID, nil, ""},
		{"AnActionIdASpreadsheetWroteInScientificNotationSaysHowToKeepItsDigits",
			cells{"ActionId": "9.00000000000012E+14", "Reason": "ITEM_RETURNED"}, outcome.InvalidActionID, nil,
			"scientific notation by a spreadsheet"},
		{"OidWithoutTrackerIsRejected", cells{"Oid": "ORD-1", "Reason": "ITEM_RETURNED"}, outcome.ActionTrackerRequired, nil, "ActionTrackerId"},
		{"ATrackerThatIsNotANumberIsMalformed", cells{"Oid": "ORD-1", "ActionTrackerId": "Online Sale", "Reason": "ITEM_RETURNED"}, outcome.MalformedRow, nil, `"Online Sale"`},
		{"AnOidOver64CharactersIsTooLong", cells{"Oid": strings.Repeat("ö", 65), "ActionTrackerId": "1", "Reason": "OTHER"}, outcome.FieldTooLong, nil, "65 characters"},
		{"AnOidOf64MultibyteCharactersIsFine", cells{"Oid": strings.Repeat("ö", 64), "ActionTrackerId": "1", "Reason": "OTHER"}, "", nil, ""},
		{"ARequestIdOver64CharactersIsTooLong", cells{"ActionId": "1", "Reason": "OTHER", "RequestId": strings.Repeat("r", 65)}, outcome.FieldTooLong, nil, "RequestId"},
		{"ANoteOver500CharactersIsTooLong", cells{"ActionId": "1", "Reason": "OTHER", "Note": strings.Repeat("n", 501)}, outcome.FieldTooLong, nil, "Note is 501"},

		// Reason.
		{"ABlankReasonIsRejected", cells{"ActionId": "1", "Reason": "  "}, outcome.ReasonRequired, nil, "Reason"},
		{"AnUnknownReasonIsRejected", cells{"ActionId": "1", "Reason": "CANCELLED"}, outcome.InvalidReason, nil, `"CANCELLED"`},
		{"AReasonIsMatchedIgnoringCaseSpacesAndDashes", cells{"ActionId": "1", "Reason": "item returned"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Reason, "ITEM_RETURNED") }, ""},
		{"ReturnedMeansItemReturned", cells{"ActionId": "1", "Reason": "RETURNED"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Reason, "ITEM_RETURNED") }, ""},
		{"ReturnedMerchandiseMeansItemReturned", cells{"ActionId": "1", "Reason": "ReturnedMerchandise"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Reason, "ITEM_RETURNED") }, ""},
		{"FraudMeansConsFraud", cells{"ActionId": "1", "Reason": "fraud"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Reason, "CONS_FRAUD") }, ""},
		{"InvalidCreditCardMeansConsFraud", cells{"ActionId": "1", "Reason": "InvalidCreditCard"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Reason, "CONS_FRAUD") }, ""},

		// Operation, explicit or derived.
		{"ResetReasonDerivesReset", cells{"ActionId": "1", "Reason": "RESET", "Amount": "5"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Operation, Reset) }, ""},
		{"ApprovedReasonDerivesApprove", cells{"ActionId": "1", "Reason": "APPROVED"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Operation, Approve) }, ""},
		{"NoAmountDerivesReverse", cells{"ActionId": "1", "Reason": "ITEM_RETURNED"}, "",
			func(t *testing.T, u ActionUpdate) {
				wantEqual(t, u.Operation, Reverse)
				wantEqual(t, u.HasAmount, false)
			}, ""},
		{"NoAmountOnOrderUpdateIsRejected", cells{"ActionId": "1", "Reason": "ORDER_UPDATE"}, outcome.AmountRequired, nil, "ORDER_UPDATE needs a value in Amount"},
		{"AmountZeroDerivesModifyThatMayReverse", cells{"ActionId": "1", "Reason": "ITEM_RETURNED", "Amount": "0.00"}, "",
			func(t *testing.T, u ActionUpdate) {
				wantEqual(t, u.Operation, Modify)
				wantEqual(t, u.ReverseIfZero, true)
				wantEqual(t, u.HasAmount, true)
			}, ""},
		{"AnAmountDerivesModify", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "Amount": "1,234.50"}, "",
			func(t *testing.T, u ActionUpdate) {
				wantEqual(t, u.Operation, Modify)
				wantEqual(t, u.Amount, money.Amount(123450))
				wantEqual(t, u.ReverseIfZero, false)
			}, ""},
		{"AnExplicitOperationWins", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "Operation": "reverse"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Operation, Reverse) }, ""},
		{"AnExplicitModifyOfZeroDoesNotReverse", cells{"ActionId": "1", "Reason": "OTHER", "Operation": "MODIFY", "Amount": "0"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.ReverseIfZero, false) }, ""},
		{"AnExplicitModifyWithoutAmountIsRejected", cells{"ActionId": "1", "Reason": "OTHER", "Operation": "MODIFY"}, outcome.AmountRequired, nil, "MODIFY needs a value in Amount"},
		{"AnUnknownOperationIsRejected", cells{"ActionId": "1", "Reason": "OTHER", "Operation": "CANCEL"}, outcome.InvalidOperation, nil, `"CANCEL"`},

		// Amount.
		{"AnAmountWithThreeDecimalsIsRejected", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "Amount": "12.345"}, outcome.InvalidAmount, nil,
			`Amount "12.345" has more than 2 decimal places`},
		{"ANegativeAmountIsRejected", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "Amount": "-1"}, outcome.InvalidAmount, nil, "negative"},
		{"AnAmountInWordsIsRejected", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "Amount": "ten"}, outcome.InvalidAmount, nil, "not a number"},
		{"ADecimalCommaWithoutTheSettingIsExplained", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "Amount": "12,50"}, outcome.InvalidAmount, nil, "decimal_comma"},

		// Currency, customer status.
		{"ACurrencyIsUpperCased", cells{"ActionId": "1", "Reason": "OTHER", "CurrencyCode": "eur"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.Currency, "EUR") }, ""},
		{"ACurrencyOfTwoLettersIsRejected", cells{"ActionId": "1", "Reason": "OTHER", "CurrencyCode": "EU"}, outcome.InvalidCurrency, nil, `"EU"`},
		{"ACurrencySymbolIsRejected", cells{"ActionId": "1", "Reason": "OTHER", "CurrencyCode": "€"}, outcome.InvalidCurrency, nil, ""},
		{"ACustomerStatusIsUpperCased", cells{"ActionId": "1", "Reason": "OTHER", "Amount": "5", "CustomerStatus": "existing"}, "",
			func(t *testing.T, u ActionUpdate) { wantEqual(t, u.CustomerStatus, "EXISTING") }, ""},
		{"AnUnknownCustomerStatusIsRejected", cells{"ActionId": "1", "Reason": "OTHER", "Amount": "5", "CustomerStatus": "VIP"}, outcome.InvalidCustomerStatus, nil, `"VIP"`},
		{"ACustomerStatusOnAReversalIsRejected", cells{"ActionId": "1", "Reason": "ITEM_RETURNED", "CustomerStatus": "NEW"}, outcome.CustomerStatusNotAllowed, nil, "reversal"},

		// Text cells.
		{"QuotesAfterASpaceAreDropped", cells{"ActionId": `1`, "Reason": ` "OTHER"`, "Note": ` "say ""hi"""`}, "",
			func(t *testing.T, u ActionUpdate) {
				wantEqual(t, u.Reason, "OTHER")
				wantEqual(t, u.Note, `say "hi"`)
			}, ""},
		{"CellsAreTrimmed", cells{"ActionId": " 7 ", "Reason": " OTHER ", "RequestId": " r-1 ", "Note": "  hi  "}, "",
			func(t *testing.T, u ActionUpdate) {
				wantEqual(t, u.ActionID, int64(7))
				wantEqual(t, u.RequestID, "r-1")
				wantEqual(t, u.Note, "hi")
			}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := readUpdates(t, updateFile(tt.row), Format{})
			if len(rows) != 1 {
				t.Fatalf("read %d rows", len(rows))
			}
			u := rows[0]
			wantEqual(t, u.Line, 2)
			switch {
			case tt.code == "" && u.Err != nil:
				t.Fatalf("rejected: %v", u.Err)
			case tt.code != "" && u.Err == nil:
				t.Fatalf("accepted %+v, want %s", u, tt.code)
			case tt.code != "" && u.Err.Code != tt.code:
				t.Fatalf("got %v, want %s", u.Err, tt.code)
			case tt.code != "" && !strings.Contains(u.Err.Message, tt.msg):
				t.Errorf("message %q does not say %q", u.Err.Message, tt.msg)
			}
			if tt.check != nil {
				tt.check(t, u)
			}
		})
	}
}

func wantEqual[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestActionUpdateCodePrecedence gives rows with several problems: the first in
// the documented order is the row's one code.
func TestActionUpdateCodePrecedence(t *testing.T) {
	type cells = map[string]string
	long := strings.Repeat("x", 600)
	tests := []struct {
		name string
		row  cells
		want outcome.Code
	}{
		{"FieldTooLongBeforeAMissingReference", cells{"Note": long, "Reason": "NOPE"}, outcome.FieldTooLong},
		{"MissingReferenceBeforeAMissingReason", cells{"Amount": "x"}, outcome.ActionReferenceRequired},
		{"InvalidActionIdBeforeAnInvalidReason", cells{"ActionId": "x", "Reason": "NOPE"}, outcome.InvalidActionID},
		{"MissingTrackerBeforeAnInvalidReason", cells{"Oid": "o", "Reason": "NOPE"}, outcome.ActionTrackerRequired},
		{"MalformedTrackerBeforeAMissingReason", cells{"Oid": "o", "ActionTrackerId": "t"}, outcome.MalformedRow},
		{"MissingReasonBeforeAnInvalidOperation", cells{"ActionId": "1", "Operation": "x"}, outcome.ReasonRequired},
		{"InvalidReasonBeforeAnInvalidAmount", cells{"ActionId": "1", "Reason": "NOPE", "Amount": "x"}, outcome.InvalidReason},
		{"InvalidOperationBeforeAnInvalidAmount", cells{"ActionId": "1", "Reason": "OTHER", "Operation": "x", "Amount": "x"}, outcome.InvalidOperation},
		{"InvalidAmountBeforeAnInvalidCurrency", cells{"ActionId": "1", "Reason": "OTHER", "Amount": "x", "CurrencyCode": "x"}, outcome.InvalidAmount},
		{"AmountRequiredBeforeAnInvalidCurrency", cells{"ActionId": "1", "Reason": "ORDER_UPDATE", "CurrencyCode": "x"}, outcome.AmountRequired},
		{"InvalidCurrencyBeforeAnInvalidCustomerStatus", cells{"ActionId": "1", "Reason": "OTHER", "CurrencyCode": "x", "CustomerStatus": "x"}, outcome.InvalidCurrency},
		{"InvalidCustomerStatusOnAReversal", cells{"ActionId": "1", "Reason": "OTHER", "CustomerStatus": "x"}, outcome.InvalidCustomerStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := readUpdates(t, updateFile(tt.row), Format{})[0]
			if u.Err == nil || u.Err.Code != tt.want {
				t.Fatalf("got %v, want %s", u.Err, tt.want)
			}
		})
	}
	t.Run("ExtraValuesBeforeEverything", func(t *testing.T) {
		u := readUpdates(t, "ActionId,Reason\nx,,surplus\n", Format{})[0]
		if u.Err == nil || u.Err.Code != outcome.MalformedRow || !strings.Contains(u.Err.Message, "3 values but the header has 2") {
			t.Fatalf("got %v", u.Err)
		}
	})
}

func TestActionUpdateReader(t *testing.T) {
	t.Run("TreatsMissingTrailingCellsAsBlank", func(t *testing.T) {
		u := readUpdates(t, "ActionId,Reason,Amount,Note\n5,OTHER\n", Format{})[0]
		if u.Err != nil || u.Operation != Reverse {
			t.Fatalf("got %+v", u)
		}
	})
	t.Run("IgnoresBlankExtraCells", func(t *testing.T) {
		u := readUpdates(t, "ActionId,Reason\n5,OTHER,, \n", Format{})[0]
		if u.Err != nil {
			t.Fatal(u.Err)
		}
	})
	t.Run("ReadsADecimalCommaWhenConfigured", func(t *testing.T) {
		u := readUpdates(t, "ActionId;Reason;Amount\n5;OTHER;1.234,5\n", Format{DecimalComma: true})[0]
		if u.Err != nil || u.Amount != 123450 {
			t.Fatalf("got %+v", u)
		}
	})
	t.Run("SpeaksTheBrandsHeaderInMessages", func(t *testing.T) {
		u := readUpdates(t, "ActionId,Grund,Sale Amount\n5,ORDER_UPDATE,1.001\n", Format{Aliases: map[string]string{"Grund": "Reason"}})[0]
		if u.Err == nil || !strings.HasPrefix(u.Err.Message, `Sale Amount "1.001"`) {
			t.Fatalf("got %v", u.Err)
		}
	})
	t.Run("KeepsTheCellsOfTheLastRowForTheResultFile", func(t *testing.T) {
		tb, _ := openBytes(t, []byte("ActionId,Reason\n5,OTHER\n"), "a.csv", Format{}, Limits{})
		r, _ := NewActionUpdateReader(tb, Format{})
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Fields(), []string{"5", "OTHER"}) {
			t.Errorf("fields %q", r.Fields())
		}
	})
	missing := []struct {
		name, header string
		parts        []string
	}{
		{"RefusesAFileWithoutReason", "ActionId,Amount\n", []string{"no Reason (or DispositionCode, correctionReason) column", `"ActionId", "Amount"`}},
		{"RefusesAFileWithoutActionIdOrOid", "Amount,Reason\n", []string{"ActionId or Oid"}},
	}
	for _, tt := range missing {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := openBytes(t, []byte(tt.header), "a.csv", Format{}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewActionUpdateReader(tb, Format{})
			wantFileError(t, err, outcome.MissingColumn, tt.parts...)
		})
	}
	t.Run("RefusesADuplicateColumn", func(t *testing.T) {
		tb, _ := openBytes(t, []byte("ActionId,Reason,DispositionCode\n"), "a.csv", Format{}, Limits{})
		_, err := NewActionUpdateReader(tb, Format{})
		wantFileError(t, err, outcome.DuplicateColumn)
	})
}

func FuzzActionUpdates(f *testing.F) {
	f.Add([]byte(updateFile(map[string]string{"ActionId": "1", "Reason": "RETURNED"})), false)
	f.Add([]byte("ActionId;Reason;Amount\n1;ORDER_UPDATE;1.234,50\n\n2;x;y;z\n"), true)
	f.Add([]byte("Oid,ActionTrackerId,Operation,Reason,CustomerStatus\n\"a\nb\",1,MODIFY,OTHER,NEW\n"), false)
	f.Add([]byte("\xEF\xBB\xBFActionId|Reason\r\n\"1\"\"|RESET\r"), false)
	f.Add(zipBytes(f, zipEntry{"a.csv", []byte("ActionId,Reason\n1,OTHER\n")}), false)
	f.Add(gzipBytes(f, "a.csv", []byte("ActionId,Reason\n1,OTHER\n")), false)
	f.Add([]byte("\xFF\xFEA\x00c\x00t\x00"), false)
	// A workbook as a spreadsheet program saves it: the zip and package around
	// the XML (FuzzXLSX mutates the XML itself).
	lo, err := os.ReadFile(filepath.Join("testdata", "brands", "acme_returns_libreoffice.xlsx"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(lo, false)
	known := map[outcome.Code]bool{}
	for _, c := range outcome.Codes {
		known[c] = true
	}
	f.Fuzz(func(t *testing.T, data []byte, decimalComma bool) {
		format := Format{DecimalComma: decimalComma}
		l := Limits{MaxFieldBytes: 1 << 10, MaxRows: 1000, MaxUncompressedBytes: 1 << 20}
		tb, err := Open(bytes.NewReader(data), int64(len(data)), "fuzz.csv", format, l)
		if err != nil {
			wantOnlyFileErrors(t, err)
			return
		}
		defer tb.Close()
		r, err := NewActionUpdateReader(tb, format)
		if err != nil {
			wantOnlyFileErrors(t, err)
			return
		}
		prev := 1
		for {
			u, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				wantOnlyFileErrors(t, err)
				return
			}
			if u.Line <= prev {
				t.Fatalf("line %d after line %d", u.Line, prev)
			}
			prev = u.Line
			if u.Err != nil {
				if !known[u.Err.Code] {
					t.Fatalf("unknown code %q", u.Err.Code)
				}
				if u.Err.Message == "" {
					t.Fatal("a rejection without a message")
				}
				continue
			}
			// A valid row is one the ledger can apply.
			if u.ActionID <= 0 && (u.Oid == "" || u.TrackerID <= 0) {
				t.Fatalf("valid row %+v names no action", u)
			}
			if u.Reason == "" || !slices.Contains([]Operation{Modify, Reverse, Approve, Reset}, u.Operation) {
				t.Fatalf("valid row %+v lacks a reason or an operation", u)
			}
			if u.Operation == Modify && !u.HasAmount {
				t.Fatalf("valid MODIFY %+v without an amount", u)
			}
		}
	})
}

func wantOnlyFileErrors(t *testing.T, err error) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("not a *FileError: %v", err)
	}
	if !slices.Contains(outcome.QuarantineCodes, fe.Code) || fe.Reason == "" {
		t.Fatalf("bad file error %+v", fe)
	}
}

// BenchmarkActionUpdates reads and validates a typical 8-column action-update file.
func BenchmarkActionUpdates(b *testing.B) {
	const rows = 100_000
	data := typicalUpdates(rows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		tb, err := Open(bytes.NewReader(data), int64(len(data)), "updates.csv", Format{}, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		r, err := NewActionUpdateReader(tb, Format{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			u, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if u.Err != nil {
				b.Fatal(u.Err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("read %d rows", n)
		}
		_ = tb.Close()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func TestMessagesQuoteTheBrandsValueAsWritten(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`=HYPERLINK("http://x")`, `"=HYPERLINK("http://x")"`},
		{"12,5", `"12,5"`},
		{"a\nb\tc", `"a\nb\tc"`},
		{strings.Repeat("x", 70), `"` + strings.Repeat("x", 60) + `…"`},
	} {
		if got := quoteValue(c.in); got != c.want {
			t.Errorf("quoteValue(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
