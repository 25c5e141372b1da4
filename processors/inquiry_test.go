package processors

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// readRows reads every row of a file of one kind with its reader.
func readRows[T any, R interface{ Next() (T, error) }](t *testing.T, text string, f Format, open func(*Table, Format) (R, error)) []T {
	t.Helper()
	tb, err := openBytes(t, []byte(text), "rows.csv", f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := open(tb, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for {
		row, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
}

// The partner platform's own export header, as the issue names its columns.
const inquiriesHeader = "Inquiry Id,PartnerId,Order Id,Action Tracker,Transaction Date,Sale Amount,Expected Payout,Type,Submission Date\n"

func TestInquiryRules(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal("no tzdata:", err)
	}
	tests := []struct {
		name  string
		row   string
		code  outcome.Code
		check func(t *testing.T, q Inquiry)
	}{
		{"AFullRow", "Q-1,77,A-1,1001,2026-09-01 12:00,100.00,8.50,untracked,2026-09-03T10:00:00Z", "", func(t *testing.T, q Inquiry) {
			wantEqual(t, q.InquiryID, "Q-1")
			wantEqual(t, q.PartnerID, int64(77))
			wantEqual(t, q.Oid, "A-1")
			wantEqual(t, q.TrackerID, int64(1001))
			wantEqual(t, q.TransactionDate.Equal(time.Date(2026, 9, 1, 12, 0, 0, 0, newYork)), true)
			wantEqual(t, q.SaleAmount, money.Amount(10000))
			wantEqual(t, q.HasSaleAmount, true)
			wantEqual(t, q.ExpectedPayout, money.Amount(850))
			wantEqual(t, q.Type, InquiryUntracked)
			wantEqual(t, q.SubmittedAt.Equal(time.Date(2026, 9, 3, 10, 0, 0, 0, time.UTC)), true)
		}},
		{"TrackerAmountsAndSubmissionDateAreOptional", "Q-1,77,A-1,,2026-09-01,,,INCORRECT,", "", func(t *testing.T, q Inquiry) {
			wantEqual(t, q.TrackerID, int64(0))
			wantEqual(t, q.HasSaleAmount, false)
			wantEqual(t, q.HasExpected, false)
			wantEqual(t, q.SubmittedAt.IsZero(), true)
		}},
		{"ABlankIdIsMalformed", ",77,A-1,,2026-09-01,,,DECLINED,", outcome.MalformedRow, nil},
		{"ABlankOrderIsMalformed", "Q-1,77,,,2026-09-01,,,DECLINED,", outcome.MalformedRow, nil},
		{"ALongIdIsTooLong", strings.Repeat("q", 65) + ",77,A-1,,2026-09-01,,,DECLINED,", outcome.FieldTooLong, nil},
		{"APartnerIdIsAWholeNumber", "Q-1,p77,A-1,,2026-09-01,,,DECLINED,", outcome.InvalidPartnerID, nil},
		{"ATrackerIsAWholeNumber", "Q-1,77,A-1,SALE,2026-09-01,,,DECLINED,", outcome.MalformedRow, nil},
		{"TheTransactionDateIsRequired", "Q-1,77,A-1,,,,,DECLINED,", outcome.TransactionDateRequired, nil},
		{"ABadTransactionDate", "Q-1,77,A-1,,01/09/2026,,,DECLINED,", outcome.InvalidDate, nil},
		{"ASaleAmountOverTheLimit", "Q-1,77,A-1,,2026-09-01,5000000.01,,DECLINED,", outcome.SaleAmountLimit, nil},
		{"ASaleAmountAtTheLimit", "Q-1,77,A-1,,2026-09-01,5000000.00,,DECLINED,", "", nil},
		{"ABadExpectedPayout", "Q-1,77,A-1,,2026-09-01,,-1,DECLINED,", outcome.InvalidAmount, nil},
		{"TheTypeIsRequired", "Q-1,77,A-1,,2026-09-01,,,,", outcome.InvalidInquiryType, nil},
		{"AnUnknownType", "Q-1,77,A-1,,2026-09-01,,,MISSING,", outcome.InvalidInquiryType, nil},
		{"ABadSubmissionDate", "Q-1,77,A-1,,2026-09-01,,,DECLINED,yesterday", outcome.InvalidDate, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := readRows(t, inquiriesHeader+tt.row+"\n", Format{Location: newYork}, NewInquiryReader)[0]
			switch {
			case tt.code == "" && q.Err != nil:
				t.Fatalf("rejected: %v", q.Err)
			case tt.code != "" && (q.Err == nil || q.Err.Code != tt.code):
				t.Fatalf("got %v, want %s", q.Err, tt.code)
			}
			if tt.check != nil {
				tt.check(t, q)
			}
		})
	}
	t.Run("RefusesAFileWithoutRequiredColumns", func(t *testing.T) {
		tb, _ := openBytes(t, []byte("Inquiry Id,PartnerId,Order Id\n"), "a.csv", Format{}, Limits{})
		_, err := NewInquiryReader(tb, Format{})
		wantFileError(t, err, outcome.MissingColumn, "TransactionDate", "Type")
	})
	t.Run("IsDetectedFromItsHeader", func(t *testing.T) {
		kind, err := DetectKind(strings.Split(strings.TrimSpace(inquiriesHeader), ","), nil)
		wantEqual(t, err, error(nil))
		wantEqual(t, kind, Inquiries)
	})
}

const resolutionsHeader = "Id,Resolution Status,Resolution Reason,Transaction Date,Action Tracker,Final Payout,Sale Amount,Resolution Notes,Customer Id,Customer Status,Promo Code\n"

func TestInquiryResolutionRules(t *testing.T) {
	tests := []struct {
		name  string
		row   string
		code  outcome.Code
		check func(t *testing.T, r InquiryResolution)
	}{
		{"AValidRowWithEverything", "Q-1,valid,,2026-09-01T12:00:00Z,1001,7.50,100,thanks,C-9,new,SUMMER", "", func(t *testing.T, r InquiryResolution) {
			wantEqual(t, r.Status, ResolutionValid)
			wantEqual(t, r.TransactionDate.Equal(time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)), true)
			wantEqual(t, r.TrackerID, int64(1001))
			wantEqual(t, r.FinalPayout, money.Amount(750))
			wantEqual(t, r.HasFinalPayout, true)
			wantEqual(t, r.SaleAmount, money.Amount(10000))
			wantEqual(t, r.Notes, "thanks")
			wantEqual(t, r.CustomerID, "C-9")
			wantEqual(t, r.CustomerStatus, "NEW")
			wantEqual(t, r.PromoCode, "SUMMER")
		}},
		{"ApprovedAndAcceptedMeanValid", "Q-1,Accepted,,,,,,,,,", "", func(t *testing.T, r InquiryResolution) {
			wantEqual(t, r.Status, ResolutionValid)
		}},
		{"RejectedMeansDeclined", "Q-1,REJECTED,Transaction cannot be traced,,,,,,,,", "", func(t *testing.T, r InquiryResolution) {
			wantEqual(t, r.Status, ResolutionDeclined)
			wantEqual(t, r.Reason, "Transaction cannot be traced")
		}},
		{"AReasonIsMatchedIgnoringCaseAndPunctuation", `Q-1,DECLINED,"another marketing channel was credited with the sale due to a voucher discount code used.",,,,,,,,`, "", func(t *testing.T, r InquiryResolution) {
			wantEqual(t, r.Reason, "Another marketing channel was credited with the sale, due to a voucher/discount code used")
		}},
		{"ADeclineNeedsAReason", "Q-1,DECLINED,,,,,,,,,", outcome.ReasonRequired, nil},
		{"ADeclineNeedsAListedReason", "Q-1,DECLINED,Too late,,,,,,,,", outcome.InvalidReason, nil},
		{"IncompleteNeedsNoReason", "Q-1,INCOMPLETE,,,,,,,,,", "", nil},
		{"TheStatusIsRequired", "Q-1,,,,,,,,,,", outcome.InvalidResolutionStatus, nil},
		{"AnUnknownStatus", "Q-1,MAYBE,,,,,,,,,", outcome.InvalidResolutionStatus, nil},
		{"TheIdIsRequired", ",VALID,,,,,,,,,", outcome.MalformedRow, nil},
		{"ABadDate", "Q-1,VALID,,31.12.2026,,,,,,,", outcome.InvalidDate, nil},
		{"ABadTracker", "Q-1,VALID,,,x,,,,,,", outcome.MalformedRow, nil},
		{"ABadFinalPayout", "Q-1,VALID,,,,1.234,,,,,", outcome.InvalidAmount, nil},
		{"ASaleAmountOverTheLimit", "Q-1,VALID,,,,,5000001,,,,", outcome.SaleAmountLimit, nil},
		{"ABadCustomerStatus", "Q-1,VALID,,,,,,,,RETURNING,", outcome.InvalidCustomerStatus, nil},
		{"LongNotesAreTooLong", "Q-1,VALID,,,,,," + strings.Repeat("n", 501) + ",,,", outcome.FieldTooLong, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := readRows(t, resolutionsHeader+tt.row+"\n", Format{}, NewInquiryResolutionReader)[0]
			switch {
			case tt.code == "" && r.Err != nil:
				t.Fatalf("rejected: %v", r.Err)
			case tt.code != "" && (r.Err == nil || r.Err.Code != tt.code):
				t.Fatalf("got %v, want %s", r.Err, tt.code)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
	t.Run("RefusesAFileWithoutResolutionStatus", func(t *testing.T) {
		tb, _ := openBytes(t, []byte("Inquiry Id,Resolution Reason\n"), "a.csv", Format{}, Limits{})
		_, err := NewInquiryResolutionReader(tb, Format{})
		wantFileError(t, err, outcome.MissingColumn, "ResolutionStatus")
	})
	t.Run("EveryListedReasonIsAccepted", func(t *testing.T) {
		for _, reason := range DeclineReasons {
			r := readRows(t, resolutionsHeader+`Q-1,DECLINED,"`+reason+`",,,,,,,,`+"\n", Format{}, NewInquiryResolutionReader)[0]
			if r.Err != nil || r.Reason != reason {
				t.Errorf("%q: %v, read as %q", reason, r.Err, r.Reason)
			}
		}
	})
}

func FuzzInquiryFiles(f *testing.F) {
	f.Add([]byte(inquiriesHeader + "Q-1,77,A-1,1001,2026-09-01 12:00,100.00,8.50,untracked,2026-09-03T10:00:00Z\n"))
	f.Add([]byte(resolutionsHeader + "Q-1,DECLINED,Transaction cannot be traced,,,,,,,,\nQ-2,VALID,,2026-09-01,1,1,1,,,NEW,\n"))
	f.Add([]byte("Inquiry Id;Resolution Status\n\"Q\n1\";approved;x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Limits{MaxFieldBytes: 1 << 10, MaxRows: 1000, MaxUncompressedBytes: 1 << 20}
		for _, open := range []func(*Table) (func() (int, *RowError, error), error){
			func(tb *Table) (func() (int, *RowError, error), error) {
				r, err := NewInquiryReader(tb, Format{})
				return func() (int, *RowError, error) { q, err := r.Next(); return q.Line, q.Err, err }, err
			},
			func(tb *Table) (func() (int, *RowError, error), error) {
				r, err := NewInquiryResolutionReader(tb, Format{})
				return func() (int, *RowError, error) { q, err := r.Next(); return q.Line, q.Err, err }, err
			},
		} {
			tb, err := Open(bytes.NewReader(data), int64(len(data)), "fuzz.csv", Format{}, l)
			if err != nil {
				wantOnlyFileErrors(t, err)
				return
			}
			next, err := open(tb)
			if err != nil {
				tb.Close()
				wantOnlyFileErrors(t, err)
				continue
			}
			prev := 1
			for {
				line, rowErr, err := next()
				if err == io.EOF {
					break
				}
				if err != nil {
					wantOnlyFileErrors(t, err)
					break
				}
				if line <= prev {
					t.Fatalf("line %d after line %d", line, prev)
				}
				prev = line
				if rowErr != nil && !outcome.IsCode(rowErr.Code) {
					t.Fatalf("line %d: undocumented code %q", line, rowErr.Code)
				}
			}
			tb.Close()
		}
	})
}
