package processors

import (
	"strings"
	"time"

	"github.com/returnsd/returnsd/outcome"
)

var actionStates = codeTable([]string{"PENDING", "APPROVED", "LOCKED", "PAID", "REVERSED"}, nil)

// ActionRecordReader validates the rows of a brand's tracking export, loaded by
// `returnsd import actions`.
type ActionRecordReader struct {
	t            *Table
	decimalComma bool
	location     *time.Location
	width        int
	titles       Columns // for messages in the brand's own words

	// Positions of the columns in the header; -1 when absent.
	actionID, partnerID, tracker, oid, eventDate, amount, currency, payout, state int
}

// NewActionRecordReader maps t's header to the columns of an actions export. Every
// column but Payout and State is required (*FileError MissingColumn).
func NewActionRecordReader(t *Table, f Format) (*ActionRecordReader, error) {
	header := t.Header()
	c, err := MapHeader(header, Actions, f.Aliases)
	if err != nil {
		return nil, err
	}
	if err := requireColumns(c, Actions, header, ColActionID, ColPartnerID, ColActionTrackerID,
		ColOid, ColEventDate, ColAmount, ColCurrency); err != nil {
		return nil, err
	}
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	return &ActionRecordReader{
		t:            t,
		decimalComma: f.DecimalComma,
		location:     loc,
		width:        len(header),
		actionID:     c.Index(ColActionID),
		partnerID:    c.Index(ColPartnerID),
		tracker:      c.Index(ColActionTrackerID),
		oid:          c.Index(ColOid),
		eventDate:    c.Index(ColEventDate),
		amount:       c.Index(ColAmount),
		currency:     c.Index(ColCurrency),
		payout:       c.Index(ColPayout),
		state:        c.Index(ColState),
		titles:       c,
	}, nil
}

// Next returns the next row, validated (a bad row has Err set), io.EOF at the end,
// or what ends the file (see Table.Next).
func (r *ActionRecordReader) Next() (ActionRecord, error) {
	rec, err := r.t.Next()
	if err != nil {
		return ActionRecord{}, err
	}
	return r.parse(rec), nil
}

// parse validates one record; the first failing check, in the order of the
// columns below, is the row's one code:
//
//	MALFORMED_ROW (values beyond the header), INVALID_ACTION_ID, INVALID_PARTNER_ID,
//	ACTION_TRACKER_REQUIRED / MALFORMED_ROW (tracker blank / not a number),
//	MALFORMED_ROW / FIELD_TOO_LONG (Oid blank / over 64), INVALID_DATE,
//	AMOUNT_REQUIRED / INVALID_AMOUNT, INVALID_CURRENCY, INVALID_AMOUNT (Payout),
//	INVALID_STATE.
func (r *ActionRecordReader) parse(rec Record) ActionRecord {
	row := newRow(rec, r.t.Header())
	a := ActionRecord{Line: rec.Line, State: "PENDING"}
	t := r.titles.Title

	row.checkWidth(r.width)

	a.ActionID = row.requiredID(r.actionID, t(ColActionID), outcome.InvalidActionID, outcome.InvalidActionID)
	a.PartnerID = row.requiredID(r.partnerID, t(ColPartnerID), outcome.InvalidPartnerID, outcome.InvalidPartnerID)
	a.TrackerID = row.requiredID(r.tracker, t(ColActionTrackerID), outcome.ActionTrackerRequired, outcome.MalformedRow)

	a.Oid = row.cell(r.oid)
	if a.Oid == "" {
		row.reject(outcome.MalformedRow, "%s is empty", t(ColOid))
	}
	row.checkLength(t(ColOid), a.Oid, maxOidLength)

	if raw := row.cell(r.eventDate); raw == "" {
		row.reject(outcome.InvalidDate, "%s is empty", t(ColEventDate))
	} else if d, ok := parseDate(raw, r.location); ok {
		a.EventDate = d
	} else {
		row.reject(outcome.InvalidDate,
			"%s %s is not a date such as 2024-03-01, 2024-03-01 14:30 or 2024-03-01T14:30:00+01:00", t(ColEventDate), quoteValue(raw))
	}

	if raw := row.cell(r.amount); raw == "" {
		row.reject(outcome.AmountRequired, "%s is empty", t(ColAmount))
	} else if v, msg := parseAmount(t(ColAmount), raw, r.decimalComma); msg != "" {
		row.reject(outcome.InvalidAmount, "%s", msg)
	} else {
		a.Amount = v
	}

	if raw := row.cell(r.currency); raw == "" {
		row.reject(outcome.InvalidCurrency, "%s is empty", t(ColCurrency))
	} else if cur, ok := parseCurrency(raw); ok {
		a.Currency = cur
	} else {
		row.reject(outcome.InvalidCurrency, "%s %s is not a 3-letter currency code such as EUR", t(ColCurrency), quoteValue(raw))
	}

	if raw := row.cell(r.payout); raw != "" {
		if v, msg := parseAmount(t(ColPayout), raw, r.decimalComma); msg != "" {
			row.reject(outcome.InvalidAmount, "%s", msg)
		} else {
			a.Payout, a.HasPayout = v, true
		}
	}

	if raw := row.cell(r.state); raw != "" {
		if s, ok := lookupCode(actionStates, raw); ok {
			a.State = s
		} else {
			row.reject(outcome.InvalidState,
				"%s %s is not one of PENDING, APPROVED, LOCKED, PAID, REVERSED", t(ColState), quoteValue(raw))
		}
	}

	a.Err = row.err
	return a
}

// Layouts of dates that carry their offset, and of dates read in the brand's zone.
var (
	datesWithOffset = []string{
		time.RFC3339,
		"2006-01-02T15:04Z07:00",
		"2006-01-02 15:04:05Z07:00",
		"2006-01-02 15:04Z07:00",
		"2006-01-02T15:04:05-0700",
		"2006-01-02 15:04:05-0700",
	}
	datesWithoutOffset = []string{
		"2006-01-02",
		"2006-01-02 15:04",
		"2006-01-02 15:04:05",
		"2006-01-02T15:04",
		"2006-01-02T15:04:05",
	}
)

// parseDate reads an ISO 8601 date: with an offset it means that instant; without,
// it is read in loc (the brand's timezone).
func parseDate(s string, loc *time.Location) (time.Time, bool) {
	// An offset or Z can only follow the time, after position 10 (the date).
	if len(s) > 10 && strings.ContainsAny(s[10:], "Z+-") {
		for _, layout := range datesWithOffset {
			if d, err := time.Parse(layout, s); err == nil {
				return d, true
			}
		}
		return time.Time{}, false
	}
	for _, layout := range datesWithoutOffset {
		if d, err := time.ParseInLocation(layout, s, loc); err == nil {
			return d, true
		}
	}
	return time.Time{}, false
}
