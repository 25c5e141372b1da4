// Package outcome is the closed, documented vocabulary of what happened to a row
// and to a file (SPEC §4). Parsers and the ledger both speak it; docs/outcomes.md
// explains every code to brands, and a test keeps the two in step.
package outcome

import "github.com/returnsd/returnsd/money"

// Outcome is what happened to one row of a file. Every row has exactly one.
type Outcome string

const (
	Applied      Outcome = "APPLIED"
	Rejected     Outcome = "REJECTED"
	DuplicateRow Outcome = "DUPLICATE_ROW"
)

// Code says why a row was rejected, or (for DUPLICATE_ROW) which rule made it a duplicate.
type Code string

// Row codes. Keep docs/outcomes.md in step: TestEveryCodeIsDocumented checks it.
const (
	MalformedRow             Code = "MALFORMED_ROW"
	UnknownValue             Code = "UNKNOWN_VALUE"
	InvalidActionID          Code = "INVALID_ACTION_ID"
	InvalidOperation         Code = "INVALID_OPERATION"
	InvalidAmount            Code = "INVALID_AMOUNT"
	InvalidCurrency          Code = "INVALID_CURRENCY"
	InvalidCustomerStatus    Code = "INVALID_CUSTOMER_STATUS"
	InvalidDate              Code = "INVALID_DATE"
	FutureDate               Code = "FUTURE_DATE"
	FieldTooLong             Code = "FIELD_TOO_LONG"
	ReasonRequired           Code = "REASON_REQUIRED"
	InvalidReason            Code = "INVALID_REASON"
	AmountRequired           Code = "AMOUNT_REQUIRED"
	ActionReferenceRequired  Code = "ACTION_REFERENCE_REQUIRED"
	ActionTrackerRequired    Code = "ACTION_TRACKER_REQUIRED"
	ActionNotFound           Code = "ACTION_NOT_FOUND"
	ActionLocked             Code = "ACTION_LOCKED"
	ActionReversed           Code = "ACTION_REVERSED"
	CPCNotReversible         Code = "CPC_NOT_REVERSIBLE"
	ModLimitExceeded         Code = "MOD_LIMIT_EXCEEDED"
	CurrencyMismatch         Code = "CURRENCY_MISMATCH"
	CustomerStatusNotAllowed Code = "CUSTOMER_STATUS_NOT_ALLOWED"
	RequestIDConflict        Code = "REQUEST_ID_CONFLICT"
	DuplicateRequestID       Code = "DUPLICATE_REQUEST_ID"
	DuplicateOperation       Code = "DUPLICATE_OPERATION"
	InquiryNotFound          Code = "INQUIRY_NOT_FOUND"
	InquiryAlreadyResolved   Code = "INQUIRY_ALREADY_RESOLVED"
	TransactionDateRequired  Code = "TRANSACTION_DATE_REQUIRED"
	SaleAmountLimit          Code = "SALE_AMOUNT_LIMIT"
	// Codes of the actions import (a brand's tracking export).
	UnknownTracker   Code = "UNKNOWN_TRACKER"
	InvalidPartnerID Code = "INVALID_PARTNER_ID"
	InvalidState     Code = "INVALID_STATE"
	ActionExists     Code = "ACTION_EXISTS"
	// Codes of inquiries: partners' submissions and brands' resolutions.
	InvalidInquiryType      Code = "INVALID_INQUIRY_TYPE"
	InvalidResolutionStatus Code = "INVALID_RESOLUTION_STATUS"
	InquiriesNotAccepted    Code = "INQUIRIES_NOT_ACCEPTED"
	InquiryTooEarly         Code = "INQUIRY_TOO_EARLY"
	InquiryTooLate          Code = "INQUIRY_TOO_LATE"
	InquiryAlreadyOpen      Code = "INQUIRY_ALREADY_OPEN"
	InquiryExists           Code = "INQUIRY_EXISTS"
	NoReversedAction        Code = "NO_REVERSED_ACTION"
)

// Codes lists every row code, in the order docs/outcomes.md documents them.
var Codes = []Code{
	MalformedRow, UnknownValue, InvalidActionID, InvalidOperation, InvalidAmount, InvalidCurrency,
	InvalidCustomerStatus, InvalidDate, FutureDate, FieldTooLong, ReasonRequired,
	InvalidReason, AmountRequired, ActionReferenceRequired, ActionTrackerRequired,
	ActionNotFound, ActionLocked, ActionReversed, CPCNotReversible,
	ModLimitExceeded, CurrencyMismatch, CustomerStatusNotAllowed, RequestIDConflict,
	DuplicateRequestID, DuplicateOperation, InquiryNotFound, InquiryAlreadyResolved,
	TransactionDateRequired, SaleAmountLimit, UnknownTracker, InvalidPartnerID,
	InvalidState, ActionExists, InvalidInquiryType, InvalidResolutionStatus,
	InquiriesNotAccepted, InquiryTooEarly, InquiryTooLate, InquiryAlreadyOpen, InquiryExists,
	NoReversedAction,
}

var knownCodes = func() map[Code]bool {
	m := make(map[Code]bool, len(Codes))
	for _, c := range Codes {
		m[c] = true
	}
	return m
}()

// IsCode reports whether c is one of the documented row codes.
func IsCode(c Code) bool { return knownCodes[c] }

// FileStatus is how a received file as a whole ended.
type FileStatus string

const (
	// Received: stored, not yet applied (a crash or a transient failure left it; it is retried).
	Received      FileStatus = "RECEIVED"
	Completed     FileStatus = "COMPLETED"
	DuplicateFile FileStatus = "DUPLICATE_FILE"
	Quarantined   FileStatus = "QUARANTINED"
)

// QuarantineCode says why a file could not be processed at all.
type QuarantineCode string

const (
	FileTooLarge      QuarantineCode = "FILE_TOO_LARGE"
	TooManyRows       QuarantineCode = "TOO_MANY_ROWS"
	FieldTooLarge     QuarantineCode = "FIELD_TOO_LARGE"
	Undecodable       QuarantineCode = "UNDECODABLE"
	UnknownKind       QuarantineCode = "UNKNOWN_KIND"
	MissingColumn     QuarantineCode = "MISSING_COLUMN"
	DuplicateColumn   QuarantineCode = "DUPLICATE_COLUMN"
	EmptyFile         QuarantineCode = "EMPTY_FILE"
	UnsafeArchive     QuarantineCode = "UNSAFE_ARCHIVE"
	DamagedFile       QuarantineCode = "DAMAGED_FILE"
	UnsupportedFormat QuarantineCode = "UNSUPPORTED_FORMAT"
	SenderNotAllowed  QuarantineCode = "SENDER_NOT_ALLOWED"
	// Codes of mail sources: a message refused whole, never applied.
	SenderNotAuthenticated QuarantineCode = "SENDER_NOT_AUTHENTICATED"
	NoRoute                QuarantineCode = "NO_ROUTE"
	NoAttachment           QuarantineCode = "NO_ATTACHMENT"
)

// SenderRefused reports a code that refuses the sender rather than the file:
// such a file gets no receipt, so that a forged or unknown sender cannot make
// returnsd mail someone (no backscatter).
func (c QuarantineCode) SenderRefused() bool {
	return c == SenderNotAllowed || c == SenderNotAuthenticated || c == NoRoute
}

// QuarantineCodes lists every quarantine code, in documentation order.
var QuarantineCodes = []QuarantineCode{
	FileTooLarge, TooManyRows, FieldTooLarge, Undecodable, UnknownKind, MissingColumn,
	DuplicateColumn, EmptyFile, UnsafeArchive, DamagedFile, UnsupportedFormat, SenderNotAllowed,
	SenderNotAuthenticated, NoRoute, NoAttachment,
}

// Row is the outcome of one row, as the result file and the ops pages show it.
// Amounts are nil where they do not apply (a rejected row has no new amount).
type Row struct {
	Line      int
	Outcome   Outcome
	Code      Code
	Message   string
	ActionID  int64 // 0 when the row named no action that could be found
	OldAmount *money.Amount
	NewAmount *money.Amount
	OldPayout *money.Amount
	NewPayout *money.Amount
}
