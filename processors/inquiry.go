package processors

import (
	"strings"
	"time"
	"unicode"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// DeclineReasons are the reasons a brand may give for a DECLINED inquiry (SPEC §3.2),
// as partners are shown them.
var DeclineReasons = []string{
	"This transaction has been tracked successfully",
	"Another marketing channel was credited with the sale",
	"Another marketing channel was credited with the sale, due to a voucher/discount code used",
	"Did not meet terms and conditions set by merchant",
	"Transaction not completed - Order cancelled, changed, or returned",
	"Transaction cannot be traced",
	"Transaction not fully completed online",
	"Enquiry does not provide complete information required for evaluation",
}

// The two decline reasons auto-resolution gives.
const (
	ReasonTrackedSuccessfully = "This transaction has been tracked successfully"
	ReasonOtherChannel        = "Another marketing channel was credited with the sale"
)

// MaxSaleAmount is the largest Sale Amount an inquiry or its resolution may carry.
var MaxSaleAmount = money.Amount(5_000_000_00)

var (
	inquiryTypes = codeTable([]string{string(InquiryUntracked), string(InquiryIncorrect), string(InquiryDeclined)}, nil)
	resolutions  = codeTable([]string{string(ResolutionValid), string(ResolutionDeclined), string(ResolutionIncomplete)},
		map[string]string{"APPROVED": "VALID", "ACCEPTED": "VALID", "REJECTED": "DECLINED"})
	customerStatuses = codeTable([]string{"NEW", "EXISTING"}, nil)
	declineReasons   = func() map[string]string {
		m := make(map[string]string, len(DeclineReasons))
		for _, r := range DeclineReasons {
			m[foldReason(r)] = r
		}
		return m
	}()
)

// foldReason matches a decline reason as brands type it: letters and digits only,
// lower case ("transaction cannot be traced." is the listed reason).
func foldReason(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, s)
}

// Limits on text cells of inquiries.
const (
	maxInquiryIDLength  = 64
	maxCustomerIDLength = 64
	maxPromoCodeLength  = 64
)

// InquiryReader validates the rows of partners' inquiry submissions.
type InquiryReader struct {
	t            *Table
	decimalComma bool
	location     *time.Location
	width        int
	titles       Columns

	id, partnerID, oid, tracker, date, amount, expected, typ, submitted, currency, customerStatus, note int
}

// NewInquiryReader maps t's header to the columns of inquiry submissions: Id,
// PartnerId, Oid, Transaction Date and Type are required (*FileError MissingColumn).
func NewInquiryReader(t *Table, f Format) (*InquiryReader, error) {
	header := t.Header()
	c, err := MapHeader(header, Inquiries, f.Aliases)
	if err != nil {
		return nil, err
	}
	if err := requireColumns(c, Inquiries, header, ColID, ColPartnerID, ColOid, ColTransactionDate, ColType); err != nil {
		return nil, err
	}
	return &InquiryReader{
		t: t, decimalComma: f.DecimalComma, location: locationOr(f.Location), width: len(header), titles: c,
		id: c.Index(ColID), partnerID: c.Index(ColPartnerID), oid: c.Index(ColOid),
		tracker: c.Index(ColActionTrackerID), date: c.Index(ColTransactionDate), amount: c.Index(ColSaleAmount),
		expected: c.Index(ColExpectedPayout), typ: c.Index(ColType), submitted: c.Index(ColSubmissionDate),
		currency: c.Index(ColCurrencyCode), customerStatus: c.Index(ColCustomerStatus), note: c.Index(ColNote),
	}, nil
}

// Next returns the next row, validated (a bad row has Err set), io.EOF at the end,
// or what ends the file (see Table.Next).
func (r *InquiryReader) Next() (Inquiry, error) {
	rec, err := r.t.Next()
	if err != nil {
		return Inquiry{}, err
	}
	return r.parse(rec), nil
}

// parse validates one submission; the first failing check is the row's one code:
//
//	MALFORMED_ROW (values beyond the header), FIELD_TOO_LONG (Id, Oid > 64, Note > 500),
//	MALFORMED_ROW (Id or Oid blank), INVALID_PARTNER_ID, MALFORMED_ROW (tracker
//	not a number), TRANSACTION_DATE_REQUIRED / INVALID_DATE, INVALID_AMOUNT /
//	SALE_AMOUNT_LIMIT (Sale Amount), INVALID_AMOUNT (Expected Payout),
//	INVALID_INQUIRY_TYPE, INVALID_DATE (Submission Date), INVALID_CURRENCY,
//	INVALID_CUSTOMER_STATUS.
//
// The window, the open-inquiry rule and the brand's terms are the ledger's checks.
func (r *InquiryReader) parse(rec Record) Inquiry {
	row := newRow(rec, r.t.Header())
	q := Inquiry{Line: rec.Line}
	t := r.titles.Title

	row.checkWidth(r.width)
	q.InquiryID = row.cell(r.id)
	q.Oid = row.cell(r.oid)
	q.Note = row.cell(r.note)
	row.checkLength(t(ColID), q.InquiryID, maxInquiryIDLength)
	row.checkLength(t(ColOid), q.Oid, maxOidLength)
	row.checkLength(t(ColNote), q.Note, maxNoteLength)
	if q.InquiryID == "" {
		row.reject(outcome.MalformedRow, "%s is empty", t(ColID))
	}
	if q.Oid == "" {
		row.reject(outcome.MalformedRow, "%s is empty", t(ColOid))
	}
	q.PartnerID = row.requiredID(r.partnerID, t(ColPartnerID), outcome.InvalidPartnerID, outcome.InvalidPartnerID)
	q.TrackerID = row.optionalID(r.tracker, t(ColActionTrackerID))

	if raw := row.cell(r.date); raw == "" {
		row.reject(outcome.TransactionDateRequired, "%s is empty; the inquiry window runs from the order date", t(ColTransactionDate))
	} else {
		q.TransactionDate = row.date(raw, t(ColTransactionDate), r.location)
	}
	q.SaleAmount, q.HasSaleAmount = row.saleAmount(r.amount, t(ColSaleAmount), r.decimalComma)
	q.ExpectedPayout, q.HasExpected = row.optionalAmount(r.expected, t(ColExpectedPayout), r.decimalComma)

	if raw := row.cell(r.typ); raw == "" {
		row.reject(outcome.InvalidInquiryType, "%s is empty; it is one of UNTRACKED, INCORRECT, DECLINED", t(ColType))
	} else if v, ok := lookupCode(inquiryTypes, raw); ok {
		q.Type = InquiryType(v)
	} else {
		row.reject(outcome.InvalidInquiryType, "%s %s is not one of UNTRACKED, INCORRECT, DECLINED", t(ColType), quoteValue(raw))
	}
	if raw := row.cell(r.submitted); raw != "" {
		q.SubmittedAt = row.date(raw, t(ColSubmissionDate), r.location)
	}
	if raw := row.cell(r.currency); raw != "" {
		if cur, ok := parseCurrency(raw); ok {
			q.Currency = cur
		} else {
			row.reject(outcome.InvalidCurrency, "%s %s is not a 3-letter currency code such as EUR", t(ColCurrencyCode), quoteValue(raw))
		}
	}
	q.CustomerStatus = row.customerStatus(r.customerStatus, t(ColCustomerStatus))
	q.Err = row.err
	return q
}

// InquiryResolutionReader validates the rows of an inquiry-resolution file (SPEC §3.2).
type InquiryResolutionReader struct {
	t            *Table
	decimalComma bool
	location     *time.Location
	width        int
	titles       Columns

	id, status, reason, date, tracker, payout, amount, notes, customerID, customerStatus, promo int
}

// NewInquiryResolutionReader maps t's header to the columns of inquiry
// resolutions: Id and Resolution Status are required (*FileError MissingColumn).
func NewInquiryResolutionReader(t *Table, f Format) (*InquiryResolutionReader, error) {
	header := t.Header()
	c, err := MapHeader(header, InquiryResolutions, f.Aliases)
	if err != nil {
		return nil, err
	}
	if err := requireColumns(c, InquiryResolutions, header, ColID, ColResolutionStatus); err != nil {
		return nil, err
	}
	return &InquiryResolutionReader{
		t: t, decimalComma: f.DecimalComma, location: locationOr(f.Location), width: len(header), titles: c,
		id: c.Index(ColID), status: c.Index(ColResolutionStatus), reason: c.Index(ColResolutionReason),
		date: c.Index(ColTransactionDate), tracker: c.Index(ColActionTrackerID), payout: c.Index(ColFinalPayout),
		amount: c.Index(ColSaleAmount), notes: c.Index(ColResolutionNotes), customerID: c.Index(ColCustomerID),
		customerStatus: c.Index(ColCustomerStatus), promo: c.Index(ColPromoCode),
	}, nil
}

// Next returns the next row, validated (a bad row has Err set), io.EOF at the end,
// or what ends the file (see Table.Next).
func (r *InquiryResolutionReader) Next() (InquiryResolution, error) {
	rec, err := r.t.Next()
	if err != nil {
		return InquiryResolution{}, err
	}
	return r.parse(rec), nil
}

// parse validates one resolution; the first failing check is the row's one code:
//
//	MALFORMED_ROW (values beyond the header), FIELD_TOO_LONG (Id, Customer Id,
//	Promo Code > 64, Resolution Notes > 500), MALFORMED_ROW (Id blank),
//	INVALID_RESOLUTION_STATUS, REASON_REQUIRED / INVALID_REASON (DECLINED only),
//	INVALID_DATE, MALFORMED_ROW (tracker not a number), INVALID_AMOUNT (Final
//	Payout), INVALID_AMOUNT / SALE_AMOUNT_LIMIT, INVALID_CUSTOMER_STATUS.
//
// What needs the inquiry (it exists, is open, has a date and a tracker, the date is
// not in the future) is the ledger's check.
func (r *InquiryResolutionReader) parse(rec Record) InquiryResolution {
	row := newRow(rec, r.t.Header())
	q := InquiryResolution{Line: rec.Line}
	t := r.titles.Title

	row.checkWidth(r.width)
	q.InquiryID = row.cell(r.id)
	q.Notes = row.cell(r.notes)
	q.CustomerID = row.cell(r.customerID)
	q.PromoCode = row.cell(r.promo)
	row.checkLength(t(ColID), q.InquiryID, maxInquiryIDLength)
	row.checkLength(t(ColCustomerID), q.CustomerID, maxCustomerIDLength)
	row.checkLength(t(ColPromoCode), q.PromoCode, maxPromoCodeLength)
	row.checkLength(t(ColResolutionNotes), q.Notes, maxNoteLength)
	if q.InquiryID == "" {
		row.reject(outcome.MalformedRow, "%s is empty", t(ColID))
	}

	if raw := row.cell(r.status); raw == "" {
		row.reject(outcome.InvalidResolutionStatus, "%s is empty; it is one of VALID, DECLINED, INCOMPLETE", t(ColResolutionStatus))
	} else if v, ok := lookupCode(resolutions, raw); ok {
		q.Status = Resolution(v)
	} else {
		row.reject(outcome.InvalidResolutionStatus, "%s %s is not one of VALID, DECLINED, INCOMPLETE", t(ColResolutionStatus), quoteValue(raw))
	}
	if q.Status == ResolutionDeclined {
		switch raw := row.cell(r.reason); {
		case raw == "":
			row.reject(outcome.ReasonRequired, "%s is empty; a DECLINED inquiry needs one of the listed reasons", t(ColResolutionReason))
		case declineReasons[foldReason(raw)] == "":
			row.reject(outcome.InvalidReason, "%s %s is not one of the listed decline reasons (see docs/outcomes.md)", t(ColResolutionReason), quoteValue(raw))
		default:
			q.Reason = declineReasons[foldReason(raw)]
		}
	}
	if raw := row.cell(r.date); raw != "" {
		q.TransactionDate = row.date(raw, t(ColTransactionDate), r.location)
	}
	q.TrackerID = row.optionalID(r.tracker, t(ColActionTrackerID))
	q.FinalPayout, q.HasFinalPayout = row.optionalAmount(r.payout, t(ColFinalPayout), r.decimalComma)
	q.SaleAmount, q.HasSaleAmount = row.saleAmount(r.amount, t(ColSaleAmount), r.decimalComma)
	q.CustomerStatus = row.customerStatus(r.customerStatus, t(ColCustomerStatus))
	q.Err = row.err
	return q
}

func locationOr(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// optionalID reads a whole number above 0 from cell i; blank is 0.
func (r *row) optionalID(i int, title string) int64 {
	raw := r.cell(i)
	if raw == "" {
		return 0
	}
	id, ok := parseID(raw)
	if !ok {
		r.reject(outcome.MalformedRow, "%s %s is not a whole number above 0", title, quoteValue(raw))
	}
	return id
}

// date reads a date (INVALID_DATE when it is not one).
func (r *row) date(raw, title string, loc *time.Location) time.Time {
	d, ok := parseDate(raw, loc)
	if !ok {
		r.reject(outcome.InvalidDate,
			"%s %s is not a date such as 2024-03-01, 2024-03-01 14:30 or 2024-03-01T14:30:00+01:00", title, quoteValue(raw))
	}
	return d
}

// optionalAmount reads an amount from cell i; blank is not given.
func (r *row) optionalAmount(i int, title string, decimalComma bool) (money.Amount, bool) {
	raw := r.cell(i)
	if raw == "" {
		return 0, false
	}
	v, msg := parseAmount(title, raw, decimalComma)
	if msg != "" {
		r.reject(outcome.InvalidAmount, "%s", msg)
		return 0, false
	}
	return v, true
}

// saleAmount reads an optional Sale Amount, at most MaxSaleAmount.
func (r *row) saleAmount(i int, title string, decimalComma bool) (money.Amount, bool) {
	v, ok := r.optionalAmount(i, title, decimalComma)
	if ok && v > MaxSaleAmount {
		r.reject(outcome.SaleAmountLimit, "%s %s is over the limit of 5,000,000", title, v)
		return 0, false
	}
	return v, ok
}

// customerStatus reads an optional NEW or EXISTING.
func (r *row) customerStatus(i int, title string) string {
	raw := r.cell(i)
	if raw == "" {
		return ""
	}
	v, ok := lookupCode(customerStatuses, raw)
	if !ok {
		r.reject(outcome.InvalidCustomerStatus, "%s %s is not NEW or EXISTING", title, quoteValue(raw))
	}
	return v
}
