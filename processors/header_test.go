package processors

import (
	"testing"

	"github.com/returnsd/returnsd/outcome"
)

func TestMapHeader(t *testing.T) {
	tests := []struct {
		name    string
		header  []string
		kind    Kind
		aliases map[string]string
		want    map[string]int
	}{
		{"MatchesCanonicalNames", []string{"ActionId", "Reason", "Amount"}, ActionUpdates, nil,
			map[string]int{ColActionID: 0, ColReason: 1, ColAmount: 2}},
		{"IgnoresCaseSpacesUnderscoresAndDashes", []string{"action_id", " REASON ", "Action-Tracker ID", "customer status"}, ActionUpdates, nil,
			map[string]int{ColActionID: 0, ColReason: 1, ColActionTrackerID: 2, ColCustomerStatus: 3}},
		{"FollowsTheBuiltInAliases", []string{"Order Id", "EventTypeId", "Sale Amount", "Currency", "correctionReason"}, ActionUpdates, nil,
			map[string]int{ColOid: 0, ColActionTrackerID: 1, ColAmount: 2, ColCurrencyCode: 3, ColReason: 4}},
		{"MapsDispositionCodeToReason", []string{"DispositionCode", "OrderId"}, ActionUpdates, nil,
			map[string]int{ColReason: 0, ColOid: 1}},
		{"FollowsTheBrandsAliasesIgnoringCase", []string{"Bestellnummer", "GRUND", "Betrag"}, ActionUpdates,
			map[string]string{"bestellnummer": "Oid", "Grund": "reason", "Betrag": "Amount"},
			map[string]int{ColOid: 0, ColReason: 1, ColAmount: 2}},
		{"LetsABrandAliasWinOverABuiltInOne", []string{"Date", "Booking Date"}, Actions,
			map[string]string{"Booking Date": "EventDate", "Date": "Oid"},
			map[string]int{ColOid: 0, ColEventDate: 1}},
		{"KeepsUnknownColumnsOutOfTheMapping", []string{"ActionId", "Shop", "", "Reason"}, ActionUpdates, nil,
			map[string]int{ColActionID: 0, ColReason: 3}},
		{"MapsCurrencyCodeToCurrencyForActions", []string{"CurrencyCode", "Transaction Date"}, Actions, nil,
			map[string]int{ColCurrency: 0, ColEventDate: 1}},
		{"MapsInquiryResolutionColumns", []string{"Inquiry Id", "Resolution Status", "Action Tracker"}, InquiryResolutions, nil,
			map[string]int{ColID: 0, ColResolutionStatus: 1, ColActionTrackerID: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := MapHeader(tt.header, tt.kind, tt.aliases)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.index) != len(tt.want) {
				t.Errorf("mapped %v, want %v", c.index, tt.want)
			}
			for name, i := range tt.want {
				if got := c.Index(name); got != i {
					t.Errorf("%s at %d, want %d", name, got, i)
				}
			}
		})
	}
	t.Run("RefusesTwoColumnsMeaningTheSame", func(t *testing.T) {
		_, err := MapHeader([]string{"ActionId", "Amount", "Reason", "Sale Amount"}, ActionUpdates, nil)
		wantFileError(t, err, outcome.DuplicateColumn, `"Amount"`, `"Sale Amount"`, "both mean Amount")
	})
	t.Run("TitlesAColumnAsTheBrandWroteIt", func(t *testing.T) {
		c, _ := MapHeader([]string{"sale amount"}, ActionUpdates, nil)
		if got := c.Title(ColAmount); got != "sale amount" {
			t.Errorf("got %q", got)
		}
		if got := c.Title(ColReason); got != ColReason {
			t.Errorf("absent column titled %q", got)
		}
	})
}

func TestDetectKind(t *testing.T) {
	tests := []struct {
		name    string
		header  []string
		aliases map[string]string
		want    Kind
	}{
		{"ActionUpdatesByActionIdAndReason", []string{"ActionId", "Reason"}, nil, ActionUpdates},
		{"ActionUpdatesByOidAndOperation", []string{"Order Id", "Action Tracker", "Operation"}, nil, ActionUpdates},
		{"ActionUpdatesThroughBrandAliases", []string{"Bestellnummer", "Grund"}, map[string]string{"Bestellnummer": "Oid", "Grund": "Reason"}, ActionUpdates},
		{"ActionsByPartnerIdAndEventDate", []string{"ActionId", "PartnerId", "Transaction Date", "Amount"}, nil, Actions},
		{"InquiryResolutionsByIdAndResolutionStatus", []string{"Inquiry Id", "Resolution Status", "Resolution Reason"}, nil, InquiryResolutions},
		{"ActionUpdatesDespiteADuplicateColumn", []string{"ActionId", "Reason", "Amount", "SaleAmount"}, nil, ActionUpdates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectKind(tt.header, tt.aliases)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("ExplainsAnUnknownHeader", func(t *testing.T) {
		_, err := DetectKind([]string{"Bestellnummer", "Betrag"}, nil)
		wantFileError(t, err, outcome.UnknownKind, `"Bestellnummer", "Betrag"`, "need Reason or Operation", "PartnerId and EventDate", "Resolution Status")
	})
}
