// Package processors turns the bytes of a brand's file into typed rows.
//
// Everything here is a pure function of an io.Reader (or io.ReaderAt): no
// database, no network. A problem with one row becomes a *RowError on that row;
// a problem with the file as a whole (undecodable, over a limit, unknown kind,
// a missing column, an unsafe archive) is a *FileError, and the caller
// quarantines the file. Memory does not grow with the size of the file.
package processors

import (
	"fmt"
	"time"

	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
)

// Kind is what a file means: which reader parses it and which ledger operation applies it.
type Kind string

const (
	// ActionUpdates: reversals, modifications, approvals and resets (SPEC §3.1).
	ActionUpdates Kind = "action-updates"
	// InquiryResolutions: a brand's decisions on partners' action inquiries (SPEC §3.2).
	InquiryResolutions Kind = "inquiry-resolutions"
	// Actions: a brand's tracking export, loaded by `returnsd import actions`.
	Actions Kind = "actions"
	// Inquiries: partners' inquiry submissions, loaded by `returnsd import inquiries`.
	Inquiries Kind = "inquiries"
)

// Format is how a brand writes its files (SPEC §3, config file_format).
type Format struct {
	// Encoding is "" for UTF-8 (a BOM is dropped) or UTF-16 with a BOM; otherwise
	// an encoding name such as "windows-1252" or "iso-8859-1".
	Encoding string `yaml:"encoding"`
	// Delimiter is one of , ; \t | ; empty means detect it from the header line.
	Delimiter string `yaml:"delimiter"`
	// DecimalComma reads "12,50" as twelve and a half.
	DecimalComma bool `yaml:"decimal_comma"`
	// Aliases maps a header as the brand writes it to a canonical column name,
	// on top of the built-in alias table.
	Aliases map[string]string `yaml:"aliases"`
	// Location reads dates written without an offset; nil means UTC.
	Location *time.Location `yaml:"-"`
}

// Limits bound what one file may cost. A file over a limit is quarantined.
// Zero fields take the defaults of WithDefaults.
type Limits struct {
	MaxFileBytes         int64 `yaml:"max_file_bytes"`         // default 256 MiB, as received (compressed)
	MaxUncompressedBytes int64 `yaml:"max_uncompressed_bytes"` // default 1 GiB, after gunzip/unzip
	MaxRows              int   `yaml:"max_rows"`               // default 2,000,000 data rows
	MaxFieldBytes        int   `yaml:"max_field_bytes"`        // default 64 KiB for one cell
	MaxArchiveEntries    int   `yaml:"max_archive_entries"`    // default 16 entries in a zip
	MaxExpansionRatio    int   `yaml:"max_expansion_ratio"`    // default 200 (uncompressed/compressed)
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFileBytes == 0 {
		l.MaxFileBytes = 256 << 20
	}
	if l.MaxUncompressedBytes == 0 {
		l.MaxUncompressedBytes = 1 << 30
	}
	if l.MaxRows == 0 {
		l.MaxRows = 2_000_000
	}
	if l.MaxFieldBytes == 0 {
		l.MaxFieldBytes = 64 << 10
	}
	if l.MaxArchiveEntries == 0 {
		l.MaxArchiveEntries = 16
	}
	if l.MaxExpansionRatio == 0 {
		l.MaxExpansionRatio = 200
	}
	return l
}

// FileError means the file as a whole cannot be processed. The caller quarantines it
// with Code and Reason; Reason is one sentence an ops person or a brand can act on.
type FileError struct {
	Code   outcome.QuarantineCode
	Reason string
}

func (e *FileError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Reason) }

// RowError rejects one row.
type RowError struct {
	Code    outcome.Code
	Message string
}

func (e *RowError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Operation is what an action-update row does to its action (SPEC §3.1).
type Operation string

const (
	Modify  Operation = "MODIFY"
	Reverse Operation = "REVERSE"
	Approve Operation = "APPROVE"
	Reset   Operation = "RESET"
)

// ActionUpdate is one validated row of an action-update file.
type ActionUpdate struct {
	Line      int    // the row number a spreadsheet shows; the header is 1
	ActionID  int64  // 0 when the row names its action by Oid + TrackerID
	Oid       string // with TrackerID when ActionID is 0
	TrackerID int64
	Operation Operation
	// ReverseIfZero is set when Operation was derived as MODIFY with Amount 0:
	// the ledger turns it into REVERSE if the action's current amount is above 0.
	ReverseIfZero  bool
	Amount         money.Amount
	HasAmount      bool
	Currency       string // upper-case ISO 4217, or ""
	CustomerStatus string // NEW, EXISTING or ""
	Reason         string // canonical reason code
	RequestID      string
	Note           string
	// Err is set when the row is rejected by validation; the fields above are then
	// filled as far as they could be read (for the result file).
	Err *RowError
}

// ActionRecord is one row of a brand's tracking export (`returnsd import actions`).
type ActionRecord struct {
	Line      int
	ActionID  int64
	PartnerID int64
	TrackerID int64
	Oid       string
	EventDate time.Time
	Amount    money.Amount
	Currency  string
	Payout    money.Amount
	HasPayout bool   // false: the contract computes the payout
	State     string // PENDING (default), APPROVED, LOCKED, PAID or REVERSED
	Err       *RowError
}

// InquiryType is what a partner claims about an order (SPEC §3.2).
type InquiryType string

const (
	InquiryUntracked InquiryType = "UNTRACKED" // the order was not tracked
	InquiryIncorrect InquiryType = "INCORRECT" // tracked with the wrong amount or tracker
	InquiryDeclined  InquiryType = "DECLINED"  // tracked, then declined or reversed wrongly
)

// Inquiry is one row of partners' inquiry submissions (`returnsd import inquiries`).
type Inquiry struct {
	Line            int
	InquiryID       string
	PartnerID       int64
	Oid             string
	TrackerID       int64 // 0: not given
	TransactionDate time.Time
	SaleAmount      money.Amount
	HasSaleAmount   bool
	ExpectedPayout  money.Amount
	HasExpected     bool
	Type            InquiryType
	SubmittedAt     time.Time // zero: not given; the import's clock is used
	Currency        string
	CustomerStatus  string
	Note            string
	Err             *RowError
}

// Resolution is a brand's decision on an inquiry (SPEC §3.2).
type Resolution string

const (
	ResolutionValid      Resolution = "VALID"      // creates the action
	ResolutionDeclined   Resolution = "DECLINED"   // with one of DeclineReasons
	ResolutionIncomplete Resolution = "INCOMPLETE" // back to the partner; stays open
)

// InquiryResolution is one row of an inquiry-resolution file.
type InquiryResolution struct {
	Line            int
	InquiryID       string
	Status          Resolution
	Reason          string    // one of DeclineReasons, for DECLINED
	TransactionDate time.Time // zero: the inquiry's
	TrackerID       int64     // 0: the inquiry's
	FinalPayout     money.Amount
	HasFinalPayout  bool // false: the contract computes the payout
	SaleAmount      money.Amount
	HasSaleAmount   bool // false: the inquiry's
	Notes           string
	CustomerID      string
	CustomerStatus  string
	PromoCode       string
	Err             *RowError
}
