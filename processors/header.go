package processors

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/returnsd/returnsd/outcome"
)

// Canonical column names. Headers are matched to them ignoring case, spaces, "_"
// and "-", directly or through an alias.
const (
	ColActionID         = "ActionId"
	ColOid              = "Oid"
	ColActionTrackerID  = "ActionTrackerId"
	ColOperation        = "Operation"
	ColAmount           = "Amount"
	ColCurrencyCode     = "CurrencyCode"
	ColCurrency         = "Currency"
	ColCustomerStatus   = "CustomerStatus"
	ColReason           = "Reason"
	ColRequestID        = "RequestId"
	ColNote             = "Note"
	ColPartnerID        = "PartnerId"
	ColEventDate        = "EventDate"
	ColPayout           = "Payout"
	ColState            = "State"
	ColID               = "Id"
	ColResolutionStatus = "ResolutionStatus"
	ColResolutionReason = "ResolutionReason"
	ColTransactionDate  = "TransactionDate"
	ColFinalPayout      = "FinalPayout"
	ColSaleAmount       = "SaleAmount"
	ColResolutionNotes  = "ResolutionNotes"
	ColCustomerID       = "CustomerId"
	ColPromoCode        = "PromoCode"
	ColExpectedPayout   = "ExpectedPayout"
	ColType             = "Type"
	ColSubmissionDate   = "SubmissionDate"
)

// column is a canonical column of a file kind and the other names brands give it.
type column struct {
	name    string
	aliases []string
}

// schemas are the columns of each kind (SPEC §3). The aliases beyond the spec's are
// names seen in exports of common affiliate platforms.
var schemas = map[Kind][]column{
	ActionUpdates: {
		{ColActionID, nil},
		{ColOid, []string{"OrderId", "Order Id"}},
		{ColActionTrackerID, []string{"EventTypeId", "Action Tracker", "Action Tracker Id"}},
		{ColOperation, nil},
		{ColAmount, []string{"SaleAmount", "Sale Amount"}},
		{ColCurrencyCode, []string{"Currency"}},
		{ColCustomerStatus, nil},
		{ColReason, []string{"DispositionCode", "correctionReason"}},
		{ColRequestID, nil},
		{ColNote, []string{"Notes"}},
	},
	Actions: {
		{ColActionID, nil},
		{ColPartnerID, nil},
		{ColActionTrackerID, []string{"EventTypeId", "Action Tracker", "Action Tracker Id"}},
		{ColOid, []string{"OrderId", "Order Id"}},
		{ColEventDate, []string{"Transaction Date", "Date"}},
		{ColAmount, []string{"SaleAmount", "Sale Amount"}},
		{ColCurrency, []string{"CurrencyCode"}},
		{ColPayout, nil},
		{ColState, []string{"Status"}},
	},
	InquiryResolutions: {
		{ColID, []string{"Inquiry Id"}},
		{ColResolutionStatus, nil},
		{ColResolutionReason, nil},
		{ColTransactionDate, nil},
		{ColActionTrackerID, []string{"Action Tracker", "EventTypeId"}},
		{ColFinalPayout, nil},
		{ColSaleAmount, nil},
		{ColResolutionNotes, nil},
		{ColCustomerID, nil},
		{ColCustomerStatus, nil},
		{ColPromoCode, nil},
	},
	// Partners' inquiry submissions (`returnsd import inquiries`).
	Inquiries: {
		{ColID, []string{"Inquiry Id"}},
		{ColPartnerID, []string{"Partner Id", "Publisher Id"}},
		{ColOid, []string{"OrderId", "Order Id"}},
		{ColActionTrackerID, []string{"Action Tracker", "EventTypeId"}},
		{ColTransactionDate, []string{"Order Date"}},
		{ColSaleAmount, []string{"Amount"}},
		{ColExpectedPayout, []string{"Expected Commission"}},
		{ColType, []string{"Inquiry Type"}},
		{ColSubmissionDate, []string{"Submitted", "Submitted At", "Submission Time"}},
		{ColCurrencyCode, []string{"Currency"}},
		{ColCustomerStatus, nil},
		{ColNote, []string{"Notes"}},
	},
}

// normalizedSchemas maps, per kind, a normalized header to its canonical name.
var normalizedSchemas = func() map[Kind]map[string]string {
	m := make(map[Kind]map[string]string, len(schemas))
	for kind, cols := range schemas {
		names := make(map[string]string)
		for _, c := range cols {
			names[normalizeName(c.name)] = c.name
			for _, a := range c.aliases {
				names[normalizeName(a)] = c.name
			}
		}
		m[kind] = names
	}
	return m
}()

// normalizeName folds a header for matching: lower case, without spaces, "_", "-"
// (and a stray byte-order mark).
func normalizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '_' || r == '-' || r == '\uFEFF' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// Columns says where each canonical column of a kind is in a header.
type Columns struct {
	index  map[string]int // canonical name → position
	header []string
}

// Index returns the position of a canonical column, or -1 when the header lacks it.
func (c Columns) Index(name string) int {
	if i, ok := c.index[name]; ok {
		return i
	}
	return -1
}

// Has reports whether the header has a canonical column.
func (c Columns) Has(name string) bool { _, ok := c.index[name]; return ok }

// Title returns the header as the brand wrote it for a canonical column, so that
// messages speak the brand's words; the canonical name when it is absent.
func (c Columns) Title(name string) string {
	if i, ok := c.index[name]; ok && c.header[i] != "" {
		return c.header[i]
	}
	return name
}

// MapHeader finds the canonical columns of kind in header. aliases (a brand's
// file_format.aliases: header as written → canonical name) win over the built-in
// ones. Columns that mean nothing to the kind are fine; they are carried into the
// result file. Two columns that mean the same are a *FileError DuplicateColumn.
func MapHeader(header []string, kind Kind, aliases map[string]string) (Columns, error) {
	builtin, ok := normalizedSchemas[kind]
	if !ok {
		return Columns{}, fmt.Errorf("processors: unknown kind %q", kind)
	}
	brand := make(map[string]string, len(aliases))
	for from, to := range aliases {
		if canonical, ok := builtin[normalizeName(to)]; ok {
			brand[normalizeName(from)] = canonical
		}
	}
	c := Columns{index: make(map[string]int), header: header}
	for i, h := range header {
		key := normalizeName(h)
		if key == "" {
			continue
		}
		canonical, ok := brand[key]
		if !ok {
			canonical, ok = builtin[key]
		}
		if !ok {
			continue
		}
		if j, dup := c.index[canonical]; dup {
			return Columns{}, &FileError{Code: outcome.DuplicateColumn, Reason: fmt.Sprintf(
				"columns %d (%q) and %d (%q) both mean %s; remove or rename one of them",
				j+1, header[j], i+1, h, canonical)}
		}
		c.index[canonical] = i
	}
	return c, nil
}

// mapLoosely maps a header for DetectKind: a duplicate column is reported later,
// by the reader, with the kind known.
func mapLoosely(header []string, kind Kind, aliases map[string]string) Columns {
	c, err := MapHeader(header, kind, aliases)
	if err == nil {
		return c
	}
	// Keep the first of duplicate columns.
	c = Columns{index: make(map[string]int), header: header}
	for i := range header {
		one, err := MapHeader(header[i:i+1], kind, aliases)
		if err != nil {
			continue
		}
		for name := range one.index {
			if _, dup := c.index[name]; !dup {
				c.index[name] = i
			}
		}
	}
	return c
}

// DetectKind decides what a file means from its header, for sources whose config
// does not say: action updates have Reason or Operation and ActionId or Oid;
// inquiry resolutions have Id and Resolution Status; inquiry submissions have Id,
// PartnerId and Type; actions (a tracking export) have PartnerId and EventDate.
func DetectKind(header []string, aliases map[string]string) (Kind, error) {
	u := mapLoosely(header, ActionUpdates, aliases)
	if (u.Has(ColReason) || u.Has(ColOperation)) && (u.Has(ColActionID) || u.Has(ColOid)) {
		return ActionUpdates, nil
	}
	r := mapLoosely(header, InquiryResolutions, aliases)
	if r.Has(ColResolutionStatus) && r.Has(ColID) {
		return InquiryResolutions, nil
	}
	q := mapLoosely(header, Inquiries, aliases)
	if q.Has(ColID) && q.Has(ColPartnerID) && q.Has(ColType) {
		return Inquiries, nil
	}
	a := mapLoosely(header, Actions, aliases)
	if a.Has(ColPartnerID) && a.Has(ColEventDate) {
		return Actions, nil
	}
	return "", &FileError{Code: outcome.UnknownKind, Reason: fmt.Sprintf(
		"the header (%s) matches no file kind: action updates need Reason or Operation, and ActionId or Oid; "+
			"inquiry resolutions need Id and Resolution Status; inquiries need Id, PartnerId and Type; "+
			"an actions export needs PartnerId and EventDate",
		describeHeader(header))}
}

// describeHeader lists a header for a message, shortened when it is long.
func describeHeader(header []string) string {
	const show = 20
	if len(header) == 0 {
		return "empty"
	}
	quoted := make([]string, 0, min(len(header), show))
	for _, h := range header[:min(len(header), show)] {
		quoted = append(quoted, fmt.Sprintf("%q", truncate(h, 40)))
	}
	s := strings.Join(quoted, ", ")
	if len(header) > show {
		s += fmt.Sprintf(" and %d more", len(header)-show)
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// requireColumns returns a *FileError MissingColumn naming the columns of a kind
// that the header lacks and what else they may be called.
func requireColumns(c Columns, kind Kind, header []string, names ...string) error {
	var missing []string
	for _, n := range names {
		if !c.Has(n) {
			missing = append(missing, describeColumn(kind, n))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &FileError{Code: outcome.MissingColumn, Reason: fmt.Sprintf(
		"the file has no %s column; its header is %s", strings.Join(missing, ", no "), describeHeader(header))}
}

// describeColumn names a canonical column with its built-in aliases.
func describeColumn(kind Kind, name string) string {
	for _, c := range schemas[kind] {
		if c.name == name && len(c.aliases) > 0 {
			return fmt.Sprintf("%s (or %s)", name, strings.Join(c.aliases, ", "))
		}
	}
	return name
}
