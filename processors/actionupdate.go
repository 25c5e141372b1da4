package processors

import (
	"github.com/returnsd/returnsd/outcome"
)

// Reason codes of action updates (SPEC §3.1).
var reasonCodes = []string{
	"ORDER_UPDATE", "ITEM_RETURNED", "ITEM_OUT_OF_STOCK", "CONS_FRAUD", "CONS_ERROR",
	"CONS_INFO_INVALID", "ORDER_ERROR", "PUB_ACT_DISPUTE", "ADV_ACT_DISPUTE",
	"NOT_COMPLIANCE_TERMS", "TEST_ACTION", "PARTNER_NOT_ACTIVE", "MP_RETURNED",
	"REJECTED", "OTHER", "APPROVED", "RESET",
}

// reasonAliases are reasons as other platforms' exports write them. Only
// unambiguous ones: a cancelled order could be ORDER_ERROR or CONS_ERROR, so
// "CANCELLED" stays INVALID_REASON and the brand picks.
var reasonAliases = map[string]string{
	"RETURNED":            "ITEM_RETURNED",
	"RETURN":              "ITEM_RETURNED",
	"ReturnedMerchandise": "ITEM_RETURNED",
	"PartialReturn":       "ITEM_RETURNED",
	"FRAUD":               "CONS_FRAUD",
	"InvalidCreditCard":   "CONS_FRAUD",
	"OUT_OF_STOCK":        "ITEM_OUT_OF_STOCK",
	"TEST":                "TEST_ACTION",
	"TEST_ORDER":          "TEST_ACTION",
	"APPROVE":             "APPROVED",
	"APPROVAL":            "APPROVED",
	"REJECT":              "REJECTED",
}

var (
	reasons    = codeTable(reasonCodes, reasonAliases)
	operations = codeTable([]string{string(Modify), string(Reverse), string(Approve), string(Reset)}, nil)
)

// Limits on text cells of an action update (SPEC §3.1).
const (
	maxOidLength       = 64
	maxRequestIDLength = 64
	maxNoteLength      = 500
)

// ActionUpdateReader validates the rows of an action-update file (SPEC §3.1).
type ActionUpdateReader struct {
	t            *Table
	decimalComma bool
	width        int // columns in the header
	fields       []string
	title        updateTitles

	// Positions of the columns in the header; -1 when absent.
	actionID, oid, tracker, operation, amount, currency, customerStatus, reason, requestID, note int
}

// updateTitles are the columns as the brand wrote them, for messages in its own
// words; looked up once, not per row.
type updateTitles struct {
	actionID, oid, tracker, operation, amount, currency, customerStatus, reason, requestID, note string
}

// NewActionUpdateReader maps t's header to the columns of action updates. A header
// without Reason, or without both ActionId and Oid, is a *FileError MissingColumn;
// two columns meaning the same are a *FileError DuplicateColumn.
func NewActionUpdateReader(t *Table, f Format) (*ActionUpdateReader, error) {
	header := t.Header()
	c, err := MapHeader(header, ActionUpdates, f.Aliases)
	if err != nil {
		return nil, err
	}
	if err := requireColumns(c, ActionUpdates, header, ColReason); err != nil {
		return nil, err
	}
	if !c.Has(ColActionID) && !c.Has(ColOid) {
		return nil, requireColumns(c, ActionUpdates, header, ColActionID+" or "+ColOid)
	}
	return &ActionUpdateReader{
		t:              t,
		decimalComma:   f.DecimalComma,
		width:          len(header),
		actionID:       c.Index(ColActionID),
		oid:            c.Index(ColOid),
		tracker:        c.Index(ColActionTrackerID),
		operation:      c.Index(ColOperation),
		amount:         c.Index(ColAmount),
		currency:       c.Index(ColCurrencyCode),
		customerStatus: c.Index(ColCustomerStatus),
		reason:         c.Index(ColReason),
		requestID:      c.Index(ColRequestID),
		note:           c.Index(ColNote),
		title: updateTitles{
			actionID: c.Title(ColActionID), oid: c.Title(ColOid), tracker: c.Title(ColActionTrackerID),
			operation: c.Title(ColOperation), amount: c.Title(ColAmount), currency: c.Title(ColCurrencyCode),
			customerStatus: c.Title(ColCustomerStatus), reason: c.Title(ColReason),
			requestID: c.Title(ColRequestID), note: c.Title(ColNote),
		},
	}, nil
}

// Next returns the next row, validated: a row that breaks a rule comes back with
// Err set, never as an error. The error is io.EOF at the end, or what ends the
// file (see Table.Next).
func (r *ActionUpdateReader) Next() (ActionUpdate, error) {
	rec, err := r.t.Next()
	if err != nil {
		r.fields = nil
		return ActionUpdate{}, err
	}
	r.fields = rec.Fields
	return r.parse(rec), nil
}

// Fields returns the cells of the row Next returned last, as written, for the
// result file. The slice is reused by the next call to Next.
func (r *ActionUpdateReader) Fields() []string { return r.fields }

// Header returns the file's header as written, for the result file.
func (r *ActionUpdateReader) Header() []string { return r.t.Header() }

// parse validates one record. The checks run in a fixed order and the first
// failure is the row's one code, so the same row always gets the same answer:
//
//  1. MALFORMED_ROW              values beyond the header
//  2. FIELD_TOO_LONG             Oid > 64, RequestId > 64, Note > 500 characters
//  3. ACTION_REFERENCE_REQUIRED  neither ActionId nor Oid
//  4. INVALID_ACTION_ID          ActionId not a whole number > 0
//  5. ACTION_TRACKER_REQUIRED    Oid (without ActionId) but no ActionTrackerId
//  6. MALFORMED_ROW              ActionTrackerId not a whole number > 0 (when the
//     row names its action by Oid; beside an ActionId the tracker is not used)
//  7. REASON_REQUIRED            Reason blank
//  8. INVALID_REASON             Reason not a known code or alias
//  9. INVALID_OPERATION          Operation not MODIFY, REVERSE, APPROVE or RESET
//  10. INVALID_AMOUNT            Amount not a decimal ≥ 0 with 2 places
//  11. AMOUNT_REQUIRED           MODIFY (explicit, or ORDER_UPDATE) without Amount
//  12. INVALID_CURRENCY          CurrencyCode not 3 letters
//  13. INVALID_CUSTOMER_STATUS   CustomerStatus not NEW or EXISTING
//  14. CUSTOMER_STATUS_NOT_ALLOWED CustomerStatus on a REVERSE
//
// The order goes from the shape of the row, to which action it names, to what it
// asks for, to the details: a brand fixes the first thing first.
func (r *ActionUpdateReader) parse(rec Record) ActionUpdate {
	row := newRow(rec, r.t.Header())
	u := ActionUpdate{Line: rec.Line}
	t := &r.title

	row.checkWidth(r.width)

	rawActionID := row.cell(r.actionID)
	u.Oid = row.cell(r.oid)
	rawTracker := row.cell(r.tracker)
	u.RequestID = row.cell(r.requestID)
	u.Note = row.cell(r.note)
	row.checkLength(t.oid, u.Oid, maxOidLength)
	row.checkLength(t.requestID, u.RequestID, maxRequestIDLength)
	row.checkLength(t.note, u.Note, maxNoteLength)

	switch {
	case rawActionID == "" && u.Oid == "":
		row.reject(outcome.ActionReferenceRequired,
			"Row names no action: give %s, or %s with %s", t.actionID, t.oid, t.tracker)
	case rawActionID != "":
		// An ActionId names the action by itself; an Oid beside it is kept for the
		// result file only.
		id, ok := parseID(rawActionID)
		if !ok {
			row.reject(outcome.InvalidActionID, "%s", notAnID(t.actionID, rawActionID))
		}
		u.ActionID = id
	case rawTracker == "":
		row.reject(outcome.ActionTrackerRequired,
			"%s %s needs an %s to find its action", t.oid, quoteValue(u.Oid), t.tracker)
	}
	if rawTracker != "" {
		id, ok := parseID(rawTracker)
		if !ok && u.ActionID == 0 {
			row.reject(outcome.MalformedRow, "%s %s is not a whole number above 0", t.tracker, quoteValue(rawTracker))
		}
		if ok {
			u.TrackerID = id
		}
	}

	rawReason := row.cell(r.reason)
	if rawReason == "" {
		row.reject(outcome.ReasonRequired, "%s is empty; every row needs a reason code", t.reason)
	} else if code, ok := lookupCode(reasons, rawReason); ok {
		u.Reason = code
	} else {
		row.reject(outcome.InvalidReason, "%s %s is not a known reason code", t.reason, quoteValue(rawReason))
	}

	rawOperation := row.cell(r.operation)
	explicit := rawOperation != ""
	if explicit {
		if op, ok := lookupCode(operations, rawOperation); ok {
			u.Operation = Operation(op)
		} else {
			row.reject(outcome.InvalidOperation,
				"%s %s is not one of MODIFY, REVERSE, APPROVE, RESET", t.operation, quoteValue(rawOperation))
		}
	}

	if rawAmount := row.cell(r.amount); rawAmount != "" {
		a, msg := parseAmount(t.amount, rawAmount, r.decimalComma)
		if msg != "" {
			row.reject(outcome.InvalidAmount, "%s", msg)
		} else {
			u.Amount, u.HasAmount = a, true
		}
	}
	amountBad := row.cell(r.amount) != "" && !u.HasAmount

	if !explicit && u.Reason != "" && !amountBad {
		r.deriveOperation(&u, &row)
	}
	if u.Operation == Modify && !u.HasAmount && !amountBad {
		row.reject(outcome.AmountRequired, "%s %s needs a value in %s (the new total sale amount)",
			t.operation, Modify, t.amount)
	}

	if raw := row.cell(r.currency); raw != "" {
		if cur, ok := parseCurrency(raw); ok {
			u.Currency = cur
		} else {
			row.reject(outcome.InvalidCurrency, "%s %s is not a 3-letter currency code such as EUR", t.currency, quoteValue(raw))
		}
	}

	if raw := row.cell(r.customerStatus); raw != "" {
		switch {
		case equalFoldASCII(raw, "NEW"):
			u.CustomerStatus = "NEW"
		case equalFoldASCII(raw, "EXISTING"):
			u.CustomerStatus = "EXISTING"
		default:
			row.reject(outcome.InvalidCustomerStatus, "%s %s is not NEW or EXISTING", t.customerStatus, quoteValue(raw))
		}
		if u.CustomerStatus != "" && u.Operation == Reverse {
			row.reject(outcome.CustomerStatusNotAllowed, "%s cannot be set on a reversal", t.customerStatus)
		}
	}

	u.Err = row.err
	return u
}

// deriveOperation decides the operation of a row without one (SPEC §3.1).
func (r *ActionUpdateReader) deriveOperation(u *ActionUpdate, row *row) {
	switch {
	case u.Reason == "RESET":
		u.Operation = Reset
	case u.Reason == "APPROVED":
		u.Operation = Approve
	case !u.HasAmount && u.Reason == "ORDER_UPDATE":
		row.reject(outcome.AmountRequired, "%s ORDER_UPDATE needs a value in %s (the new total sale amount)",
			r.title.reason, r.title.amount)
	case !u.HasAmount:
		u.Operation = Reverse
	case u.Amount == 0:
		// "0" means "nothing left": a reversal, unless the action is already at 0,
		// which only the ledger knows.
		u.Operation = Modify
		u.ReverseIfZero = true
	default:
		u.Operation = Modify
	}
}

func equalFoldASCII(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}
