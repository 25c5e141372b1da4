package processors

import (
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

func readActions(t *testing.T, text string, f Format) []ActionRecord {
	t.Helper()
	return readRows(t, text, f, NewActionRecordReader)
}

const actionsHeader = "ActionId,PartnerId,ActionTrackerId,Oid,EventDate,Amount,Currency,Payout,State\n"

func TestActionRecordRules(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal("no tzdata:", err)
	}
	tests := []struct {
		name  string
		row   string
		code  outcome.Code
		check func(t *testing.T, a ActionRecord)
	}{
		{"AValidRowDefaultsToPending", "1,2,3,O-1,2024-03-01,10.50,usd,,", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.ActionID, int64(1))
			wantEqual(t, a.PartnerID, int64(2))
			wantEqual(t, a.TrackerID, int64(3))
			wantEqual(t, a.Oid, "O-1")
			wantEqual(t, a.Amount, money.Amount(1050))
			wantEqual(t, a.Currency, "USD")
			wantEqual(t, a.HasPayout, false)
			wantEqual(t, a.State, "PENDING")
		}},
		{"ADateIsReadInTheBrandsTimezone", "1,2,3,O,2024-03-01,1,USD,,", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.EventDate.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, newYork)), true)
		}},
		{"ADateTimeWithSpaceIsReadInTheBrandsTimezone", "1,2,3,O,2024-03-01 14:30,1,USD,,", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.EventDate.Equal(time.Date(2024, 3, 1, 14, 30, 0, 0, newYork)), true)
		}},
		{"ADateTimeWithSecondsAndT", "1,2,3,O,2024-03-01T14:30:15,1,USD,,", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.EventDate.Equal(time.Date(2024, 3, 1, 14, 30, 15, 0, newYork)), true)
		}},
		{"AnOffsetWinsOverTheTimezone", "1,2,3,O,2024-03-01T14:30:00+01:00,1,USD,,", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.EventDate.Equal(time.Date(2024, 3, 1, 13, 30, 0, 0, time.UTC)), true)
		}},
		{"UTCWithZ", "1,2,3,O,2024-03-01T14:30:00.123Z,1,USD,,", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.EventDate.Equal(time.Date(2024, 3, 1, 14, 30, 0, 123e6, time.UTC)), true)
		}},
		{"APayoutAndStateAreRead", "1,2,3,O,2024-03-01,1,USD,0.08,locked", "", func(t *testing.T, a ActionRecord) {
			wantEqual(t, a.Payout, money.Amount(8))
			wantEqual(t, a.HasPayout, true)
			wantEqual(t, a.State, "LOCKED")
		}},
		{"AnAmericanDateIsRejected", "1,2,3,O,03/01/2024,1,USD,,", outcome.InvalidDate, nil},
		{"AnImpossibleDateIsRejected", "1,2,3,O,2024-02-30,1,USD,,", outcome.InvalidDate, nil},
		{"ABlankDateIsRejected", "1,2,3,O,,1,USD,,", outcome.InvalidDate, nil},
		{"APartnerIdOfZeroIsRejected", "1,0,3,O,2024-03-01,1,USD,,", outcome.InvalidPartnerID, nil},
		{"ABlankActionIdIsRejected", ",2,3,O,2024-03-01,1,USD,,", outcome.InvalidActionID, nil},
		{"ABlankTrackerIsRejected", "1,2,,O,2024-03-01,1,USD,,", outcome.ActionTrackerRequired, nil},
		{"ATrackerOfLettersIsMalformed", "1,2,SALE,O,2024-03-01,1,USD,,", outcome.MalformedRow, nil},
		{"ABlankOidIsMalformed", "1,2,3,,2024-03-01,1,USD,,", outcome.MalformedRow, nil},
		{"ABlankAmountIsRequired", "1,2,3,O,2024-03-01,,USD,,", outcome.AmountRequired, nil},
		{"AnAmountWithThreeDecimalsIsRejected", "1,2,3,O,2024-03-01,1.005,USD,,", outcome.InvalidAmount, nil},
		{"ABlankCurrencyIsRejected", "1,2,3,O,2024-03-01,1,,,", outcome.InvalidCurrency, nil},
		{"ABadPayoutIsRejected", "1,2,3,O,2024-03-01,1,USD,-1,", outcome.InvalidAmount, nil},
		{"AnUnknownStateIsRejected", "1,2,3,O,2024-03-01,1,USD,,CANCELLED", outcome.InvalidState, nil},
		{"ThePartnerIsCheckedBeforeTheDate", "1,x,3,O,never,1,USD,,", outcome.InvalidPartnerID, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := readActions(t, actionsHeader+tt.row+"\n", Format{Location: newYork})[0]
			switch {
			case tt.code == "" && a.Err != nil:
				t.Fatalf("rejected: %v", a.Err)
			case tt.code != "" && (a.Err == nil || a.Err.Code != tt.code):
				t.Fatalf("got %v, want %s", a.Err, tt.code)
			}
			if tt.check != nil {
				tt.check(t, a)
			}
		})
	}
	t.Run("ADateWithoutOffsetIsUTCWithoutALocation", func(t *testing.T) {
		a := readActions(t, actionsHeader+"1,2,3,O,2024-03-01 10:00,1,USD,,\n", Format{})[0]
		wantEqual(t, a.EventDate.Equal(time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)), true)
	})
	t.Run("RefusesAnExportWithoutRequiredColumns", func(t *testing.T) {
		tb, _ := openBytes(t, []byte("ActionId,PartnerId,Oid,EventDate\n"), "a.csv", Format{}, Limits{})
		_, err := NewActionRecordReader(tb, Format{})
		wantFileError(t, err, outcome.MissingColumn, "ActionTrackerId", "Amount", "Currency")
		if fe := err.(*FileError); strings.Contains(fe.Reason, "no Payout") {
			t.Errorf("Payout is optional: %s", fe.Reason)
		}
	})
}
