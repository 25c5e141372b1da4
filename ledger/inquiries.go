package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/processors"
)

// ImportInquiries loads partners' inquiry submissions (`returnsd import
// inquiries`): each accepted row becomes a NEW inquiry for the brand to resolve.
// A row is refused when the brand does not accept inquiries, when it comes
// outside the window after its order date (by its Submission Date, else p.At), when
// the partner already has an open inquiry for the order, or when its Inquiry Id
// is already known. Accepted rows are APPLIED with a message; the outcome of every
// row is in the import's result file like any other file's.
func (l *Ledger) ImportInquiries(ctx context.Context, p ApplyParams,
	next func() (processors.Inquiry, error)) (Summary, error) {
	stage := func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createInquiryStage); err != nil {
			return interpretError(err)
		}
		return copyRows(ctx, tx, "COPY stage FROM STDIN", func(c *copyWriter) error {
			return eachRow(next, func(q processors.Inquiry) {
				c.int(int64(q.Line))
				c.textOrNull(q.InquiryID)
				c.intOrNull(q.PartnerID)
				c.textOrNull(q.Oid)
				c.intOrNull(q.TrackerID)
				c.time(q.TransactionDate)
				c.amount(q.SaleAmount, q.HasSaleAmount)
				c.amount(q.ExpectedPayout, q.HasExpected)
				c.textOrNull(string(q.Type))
				c.time(q.SubmittedAt)
				c.textOrNull(q.Currency)
				c.textOrNull(q.CustomerStatus)
				c.textOrNull(q.Note)
				c.rowError(q.Err)
				c.endRow()
			})
		})
	}
	at := clock(p.At)
	process := func(tx pgx.Tx, brand, file int64, t *tally) error {
		err := runSteps(ctx, tx,
			step{"check inquiries", checkInquiryImport, []any{brand, at}},
			step{"one open inquiry per order", oneOpenInquiryPerOrder, nil},
			step{"insert inquiries", insertInquiries, []any{brand, file}})
		if err != nil {
			return err
		}
		return t.add(ctx, tx, workRowCounts)
	}
	sum, err := l.applyFile(ctx, p, string(processors.Inquiries), stage, process)
	if err != nil {
		return Summary{}, fmt.Errorf("ledger: import inquiries: %w", err)
	}
	return sum, nil
}

// step is one statement of a file's processing, named for its error.
type step struct {
	what, sql string
	args      []any
}

// runSteps runs statements in order, stopping at the first that fails.
func runSteps(ctx context.Context, tx pgx.Tx, steps ...step) error {
	for _, s := range steps {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("%s: %w", s.what, interpretError(err))
		}
	}
	return nil
}

// clock is the moment a file's rules are judged at: at, or now.
func clock(at time.Time) time.Time {
	if at.IsZero() {
		return time.Now()
	}
	return at
}

const createInquiryStage = `
CREATE TEMP TABLE stage (
    line             int NOT NULL,
    inquiry_id       text,
    partner_id       bigint,
    oid              text,
    tracker_id       bigint,
    transaction_date timestamptz,
    sale_amount      numeric(14, 2),
    expected_payout  numeric(14, 2),
    type             text,
    submitted_at     timestamptz,
    currency         text,
    customer_status  text,
    note             text,
    code             text,
    message          text
) ON COMMIT DROP`

// localTime shows a moment in the brand's timezone in messages.
const localTime = `'YYYY-MM-DD HH24:MI'`

// checkInquiryImport: $1 brand, $2 the clock. The window is added to the order
// date's wall-clock time in the brand's timezone (3 months after Jan 31 is Apr 30).
const checkInquiryImport = `
CREATE TEMP TABLE work ON COMMIT DROP AS
SELECT v.*,
    CASE WHEN v.verdict IS NULL THEN NULL WHEN v.verdict = 'INQUIRY_EXISTS' THEN 'DUPLICATE_ROW' ELSE 'REJECTED' END AS outcome,
    CASE v.verdict
        WHEN 'INQUIRIES_NOT_ACCEPTED' THEN v.brand_name || ' does not accept action inquiries'
        WHEN 'INQUIRY_EXISTS' THEN CASE WHEN v.known
            THEN 'Inquiry ' || v.inquiry_id || ' is already in the ledger'
            ELSE 'Inquiry ' || v.inquiry_id || ' already appears on line ' || v.first_line END
        WHEN 'UNKNOWN_TRACKER' THEN 'Action Tracker ' || v.tracker_id || ' is not a tracker of this program'
        WHEN 'CURRENCY_MISMATCH' THEN 'Currency ' || v.currency || ' differs from the program''s currency ' || v.brand_currency
        WHEN 'FUTURE_DATE' THEN CASE WHEN v.transaction_date > $2::timestamptz
            THEN 'Transaction Date ' || to_char(v.transaction_date AT TIME ZONE v.timezone, ` + localTime + `) || ' is in the future'
            ELSE 'Submission Date ' || to_char(v.submitted AT TIME ZONE v.timezone, ` + localTime + `) || ' is in the future' END
        WHEN 'INQUIRY_TOO_EARLY' THEN 'Submitted ' || to_char(v.submitted AT TIME ZONE v.timezone, ` + localTime + `)
            || '; inquiries for this order open at ' || to_char(v.opens AT TIME ZONE v.timezone, ` + localTime + `)
            || ', ' || interval_words(v.window_min) || ' after the order date'
        WHEN 'INQUIRY_TOO_LATE' THEN 'Submitted ' || to_char(v.submitted AT TIME ZONE v.timezone, ` + localTime + `)
            || '; inquiries for this order closed at ' || to_char(v.closes AT TIME ZONE v.timezone, ` + localTime + `)
            || ', ' || interval_words(v.window_max) || ' after the order date'
        WHEN 'INQUIRY_ALREADY_OPEN' THEN 'Partner ' || v.partner_id || ' already has an open inquiry ('
            || v.open_inquiry || ') for order ' || v.oid
        ELSE v.message
    END AS verdict_message
FROM (
    SELECT s.*, b.name AS brand_name, b.currency AS brand_currency, b.timezone,
        b.inquiry_window_min AS window_min, b.inquiry_window_max AS window_max,
        w.opens, w.closes, e.id IS NOT NULL AS known, o.inquiry_id AS open_inquiry,
        CASE
            WHEN s.code IS NOT NULL THEN s.code
            WHEN NOT b.inquiries_accept THEN 'INQUIRIES_NOT_ACCEPTED'
            WHEN e.id IS NOT NULL OR s.first_line <> s.line THEN 'INQUIRY_EXISTS'
            WHEN s.tracker_id IS NOT NULL AND t.id IS NULL THEN 'UNKNOWN_TRACKER'
            WHEN s.currency IS NOT NULL AND s.currency <> b.currency THEN 'CURRENCY_MISMATCH'
            WHEN s.transaction_date > $2::timestamptz OR s.submitted > $2::timestamptz THEN 'FUTURE_DATE'
            WHEN s.submitted < w.opens THEN 'INQUIRY_TOO_EARLY'
            WHEN s.submitted > w.closes THEN 'INQUIRY_TOO_LATE'
            WHEN o.id IS NOT NULL THEN 'INQUIRY_ALREADY_OPEN'
        END AS verdict
    FROM (
        SELECT st.*, coalesce(st.submitted_at, $2::timestamptz) AS submitted,
            CASE WHEN st.code IS NULL
                THEN first_value(st.line) OVER (PARTITION BY st.code IS NULL, st.inquiry_id ORDER BY st.line) END AS first_line
        FROM stage st
    ) s
    JOIN brands b ON b.id = $1
    CROSS JOIN LATERAL (SELECT
        ((s.transaction_date AT TIME ZONE b.timezone) + b.inquiry_window_min) AT TIME ZONE b.timezone AS opens,
        ((s.transaction_date AT TIME ZONE b.timezone) + b.inquiry_window_max) AT TIME ZONE b.timezone AS closes) w
    LEFT JOIN trackers t ON t.brand_id = $1 AND t.id = s.tracker_id
    LEFT JOIN inquiries e ON e.brand_id = $1 AND e.inquiry_id = s.inquiry_id
    LEFT JOIN inquiries o ON o.brand_id = $1 AND o.partner_id = s.partner_id AND o.oid = s.oid
        AND o.status IN ('NEW', 'INCOMPLETE')
) v`

// oneOpenInquiryPerOrder refuses the later of two rows of one file that would open
// inquiries for the same partner and order.
const oneOpenInquiryPerOrder = `
UPDATE work w SET outcome = 'REJECTED', verdict = 'INQUIRY_ALREADY_OPEN',
    verdict_message = 'Partner ' || w.partner_id || ' already has an inquiry for order ' || w.oid || ' on line ' || f.first
FROM (
    SELECT line, first_value(line) OVER (PARTITION BY partner_id, oid ORDER BY line) AS first
    FROM work WHERE verdict IS NULL
) f
WHERE w.line = f.line AND f.first <> f.line`

// insertInquiries: $1 brand, $2 file.
const insertInquiries = `
WITH ok AS (
    SELECT * FROM work WHERE verdict IS NULL
),
partners_added AS (
    INSERT INTO partners (id) SELECT DISTINCT partner_id FROM ok ON CONFLICT DO NOTHING
),
added AS (
    INSERT INTO inquiries (brand_id, inquiry_id, partner_id, oid, type, tracker_id, transaction_date,
        sale_amount, expected_payout, currency, customer_status, note, submitted_at, file_id, line)
    SELECT $1, inquiry_id, partner_id, oid, type, tracker_id, transaction_date,
        sale_amount, expected_payout, currency, customer_status, note, submitted, $2, line
    FROM ok
)
INSERT INTO file_rows (file_id, line, outcome, code, message, operation)
SELECT $2, line, coalesce(outcome, 'APPLIED'), verdict,
    coalesce(verdict_message, 'Inquiry ' || inquiry_id || ' recorded as NEW for the brand to resolve'), 'INQUIRY'
FROM work`

// ApplyInquiryResolutions applies a brand's inquiry-resolution file (SPEC §3.2),
// all of it or none of it, exactly like an action-update file:
//
//   - VALID creates a new PENDING action for the inquiry's partner, order and
//     tracker (the row's tracker, date and sale amount win over the inquiry's),
//     under the contract (the partner's own terms where it has them): payout
//     from Final Payout, else the tracker's rule; lock and payout dates from the
//     transaction date. Its CREATE event is the row's outcome. An action whose
//     lock date is already past (at p.At) is locked at once, and paid at once if
//     its payout date is past too, by the lifecycle's own statement: the balance
//     is debited and may go negative, the payout then flagged payout_delayed.
//     Under open-ended locking it stays PENDING until approved.
//   - DECLINED needs one of the listed reasons; INCOMPLETE sends the inquiry back
//     to the partner and keeps it open. Both are APPLIED with a message.
//   - Only NEW and INCOMPLETE inquiries can be resolved; the first row for an
//     inquiry wins, later ones are DUPLICATE_ROW.
func (l *Ledger) ApplyInquiryResolutions(ctx context.Context, p ApplyParams,
	next func() (processors.InquiryResolution, error)) (Summary, error) {
	stage := func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createResolutionStage); err != nil {
			return interpretError(err)
		}
		return copyRows(ctx, tx, "COPY stage FROM STDIN", func(c *copyWriter) error {
			return eachRow(next, func(r processors.InquiryResolution) {
				c.int(int64(r.Line))
				c.textOrNull(r.InquiryID)
				c.textOrNull(string(r.Status))
				c.textOrNull(r.Reason)
				c.time(r.TransactionDate)
				c.intOrNull(r.TrackerID)
				c.amount(r.FinalPayout, r.HasFinalPayout)
				c.amount(r.SaleAmount, r.HasSaleAmount)
				c.textOrNull(r.Notes)
				c.textOrNull(r.CustomerID)
				c.textOrNull(r.CustomerStatus)
				c.textOrNull(r.PromoCode)
				c.rowError(r.Err)
				c.endRow()
			})
		})
	}
	at := clock(p.At)
	process := func(tx pgx.Tx, brand, file int64, t *tally) error {
		err := runSteps(ctx, tx,
			step{"check resolutions", checkResolutions, []any{brand, at}},
			step{"number new actions", numberCreatedActions, nil},
			step{"resolve inquiries", resolveInquiries, []any{brand, file, p.Actor, at}})
		if err != nil {
			return err
		}
		// Settle what the new actions' past dates say is due: only them, so the
		// file does not run the lifecycle for the rest of the brand.
		var bl BrandLifecycle
		if err := lockAndPay(ctx, tx, lockAndPayCreatedSQL, brand, at, p.Actor, &bl); err != nil {
			return err
		}
		if bl.Locked > 0 || bl.Paid > 0 {
			l.logger.DebugContext(ctx, "inquiries settled at once", "file_id", file, "locked", bl.Locked,
				"paid", bl.Paid, "delayed", bl.Delayed, "debited", bl.Debited)
		}
		return t.add(ctx, tx, workRowCounts)
	}
	sum, err := l.applyFile(ctx, p, string(processors.InquiryResolutions), stage, process)
	if err != nil {
		return Summary{}, fmt.Errorf("ledger: apply inquiry resolutions: %w", err)
	}
	return sum, nil
}

const createResolutionStage = `
CREATE TEMP TABLE stage (
    line             int NOT NULL,
    inquiry_id       text,
    status           text,
    reason           text,
    transaction_date timestamptz,
    tracker_id       bigint,
    final_payout     numeric(14, 2),
    sale_amount      numeric(14, 2),
    notes            text,
    customer_id      text,
    customer_status  text,
    promo_code       text,
    code             text,
    message          text
) ON COMMIT DROP`

// checkResolutions: $1 brand, $2 the clock.
const checkResolutions = `
CREATE TEMP TABLE work ON COMMIT DROP AS
SELECT v.*,
    CASE WHEN v.verdict IS NULL THEN NULL WHEN v.verdict = 'DUPLICATE_OPERATION' THEN 'DUPLICATE_ROW' ELSE 'REJECTED' END AS outcome,
    CASE v.verdict
        WHEN 'DUPLICATE_OPERATION' THEN 'An earlier row of this file (line ' || v.first_line || ') already resolves inquiry ' || v.inquiry_id
        WHEN 'INQUIRY_NOT_FOUND' THEN 'No inquiry ' || v.inquiry_id || ' in this program'
        WHEN 'INQUIRY_ALREADY_RESOLVED' THEN 'Inquiry ' || v.inquiry_id || ' is already ' || v.inquiry_status
            || '; only NEW or INCOMPLETE inquiries can be resolved'
        WHEN 'ACTION_TRACKER_REQUIRED' THEN 'A VALID resolution needs an Action Tracker; the inquiry has none'
        WHEN 'UNKNOWN_TRACKER' THEN 'Action Tracker ' || v.tracker || ' is not a tracker of this program'
        WHEN 'TRANSACTION_DATE_REQUIRED' THEN 'A VALID resolution needs a Transaction Date; the inquiry has none'
        WHEN 'FUTURE_DATE' THEN 'Transaction Date ' || to_char(v.event_date AT TIME ZONE v.timezone, ` + localTime + `) || ' is in the future'
        WHEN 'SALE_AMOUNT_LIMIT' THEN CASE WHEN v.sale_amount IS NOT NULL
            THEN 'Sale Amount ' || v.sale_amount || ' is over the limit of 5,000,000'
            ELSE 'The inquiry''s Sale Amount ' || v.amount || ' is over the limit of 5,000,000; give the Sale Amount in the file' END
        WHEN 'AMOUNT_REQUIRED' THEN 'A VALID sale needs a Sale Amount or a Final Payout; the inquiry has no sale amount'
        ELSE v.message
    END AS verdict_message
FROM (
    SELECT s.*, i.id AS iid, i.status AS inquiry_status, i.partner_id, i.oid, b.timezone, b.currency AS brand_currency,
        coalesce(s.tracker_id, i.tracker_id) AS tracker,
        coalesce(s.transaction_date, i.transaction_date) AS event_date,
        coalesce(s.sale_amount, i.sale_amount) AS amount,
        -- A partner's own terms (partner_contracts, partner_payouts) replace the brand's.
        CASE WHEN pp.tracker_id IS NULL THEN t.payout_percent ELSE pp.payout_percent END AS payout_percent,
        CASE WHEN pp.tracker_id IS NULL THEN t.payout_fixed ELSE pp.payout_fixed END AS payout_fixed,
        CASE WHEN pc.partner_id IS NULL THEN b.locking_days ELSE pc.locking_days END AS locking_days,
        coalesce(pc.payout_delay_days, b.payout_delay_days) AS payout_delay_days,
        CASE
            WHEN s.code IS NOT NULL THEN s.code
            WHEN s.first_line <> s.line THEN 'DUPLICATE_OPERATION'
            WHEN i.id IS NULL THEN 'INQUIRY_NOT_FOUND'
            WHEN i.status NOT IN ('NEW', 'INCOMPLETE') THEN 'INQUIRY_ALREADY_RESOLVED'
            WHEN s.status <> 'VALID' THEN NULL
            WHEN coalesce(s.tracker_id, i.tracker_id) IS NULL THEN 'ACTION_TRACKER_REQUIRED'
            WHEN t.id IS NULL THEN 'UNKNOWN_TRACKER'
            WHEN coalesce(s.transaction_date, i.transaction_date) IS NULL THEN 'TRANSACTION_DATE_REQUIRED'
            WHEN coalesce(s.transaction_date, i.transaction_date) > $2::timestamptz THEN 'FUTURE_DATE'
            WHEN coalesce(s.sale_amount, i.sale_amount) > 5000000 THEN 'SALE_AMOUNT_LIMIT'
            WHEN s.final_payout IS NULL AND coalesce(s.sale_amount, i.sale_amount) IS NULL
                AND (CASE WHEN pp.tracker_id IS NULL THEN t.payout_percent ELSE pp.payout_percent END) IS NOT NULL
                THEN 'AMOUNT_REQUIRED'
        END AS verdict
    FROM (
        SELECT st.*, CASE WHEN st.code IS NULL
            THEN first_value(st.line) OVER (PARTITION BY st.code IS NULL, st.inquiry_id ORDER BY st.line) END AS first_line
        FROM stage st
    ) s
    JOIN brands b ON b.id = $1
    LEFT JOIN inquiries i ON i.brand_id = $1 AND i.inquiry_id = s.inquiry_id
    LEFT JOIN trackers t ON t.brand_id = $1 AND t.id = coalesce(s.tracker_id, i.tracker_id)
    LEFT JOIN partner_contracts pc ON pc.brand_id = $1 AND pc.partner_id = i.partner_id
    LEFT JOIN partner_payouts pp ON pp.brand_id = $1 AND pp.partner_id = i.partner_id
        AND pp.tracker_id = coalesce(s.tracker_id, i.tracker_id)
) v`

// numberCreatedActions gives each VALID row the id of the action it creates;
// lockAndPayCreatedSQL reads the same table.
const numberCreatedActions = `
CREATE TEMP TABLE created ON COMMIT DROP AS
SELECT line, nextval('action_ids') AS action_id FROM work WHERE verdict IS NULL AND status = 'VALID'`

// resolveInquiries: $1 brand, $2 file, $3 actor, $4 the clock.
const resolveInquiries = `
WITH ok AS (
    SELECT w.*, c.action_id, coalesce(w.amount, 0) AS new_amount,
        coalesce(w.final_payout, CASE WHEN w.payout_percent IS NOT NULL
            THEN round(coalesce(w.amount, 0) * w.payout_percent / 100, 2) ELSE w.payout_fixed END) AS new_payout,
        CASE WHEN w.locking_days IS NOT NULL THEN
            ((w.event_date AT TIME ZONE w.timezone) + make_interval(days => w.locking_days)) AT TIME ZONE w.timezone
        END AS lock_date,
        CASE WHEN w.locking_days IS NOT NULL THEN
            ((w.event_date AT TIME ZONE w.timezone) + make_interval(days => w.locking_days + w.payout_delay_days)) AT TIME ZONE w.timezone
        END AS payout_date
    FROM work w JOIN created c ON c.line = w.line
),
added AS (
    INSERT INTO actions (id, brand_id, partner_id, tracker_id, oid, event_date, currency, state,
        amount, payout, original_amount, original_payout, customer_status, lock_date, payout_date)
    SELECT action_id, $1, partner_id, tracker, oid, event_date, brand_currency, 'PENDING',
        new_amount, new_payout, new_amount, new_payout, customer_status, lock_date, payout_date
    FROM ok
),
events AS (
    INSERT INTO ledger_events (brand_id, action_id, kind, actor, file_id, line, reason, note,
        new_state, new_amount, new_payout)
    SELECT $1, action_id, 'CREATE', $3, $2, line, 'INQUIRY_VALID', 'inquiry ' || inquiry_id,
        'PENDING', new_amount, new_payout
    FROM ok
),
resolved AS (
    UPDATE inquiries i SET status = w.status,
        resolution_reason = w.reason,
        resolution_notes = coalesce(w.notes, i.resolution_notes),
        customer_id = coalesce(w.customer_id, i.customer_id),
        customer_status = coalesce(w.customer_status, i.customer_status),
        promo_code = coalesce(w.promo_code, i.promo_code),
        action_id = c.action_id,
        resolved_at = $4::timestamptz, resolved_by = $3, resolved_file_id = $2, resolved_line = w.line
    FROM work w LEFT JOIN created c ON c.line = w.line
    WHERE i.id = w.iid AND w.verdict IS NULL
)
INSERT INTO file_rows (file_id, line, outcome, code, message, operation)
SELECT $2, w.line, coalesce(w.outcome, 'APPLIED'), w.verdict,
    CASE
        WHEN w.verdict IS NOT NULL THEN w.verdict_message
        WHEN w.status = 'DECLINED' THEN 'Inquiry ' || w.inquiry_id || ' declined: ' || w.reason
        ELSE 'Inquiry ' || w.inquiry_id || ' is INCOMPLETE: back with the partner to complete it'
    END, coalesce(w.status, 'RESOLVE')
FROM work w
WHERE NOT (w.verdict IS NULL AND w.status = 'VALID')`

// AutoResolved is what one auto-resolution run did for a brand.
type AutoResolved struct {
	Brand   string
	Tracked int // declined: the order is tracked for the same partner
	Other   int // declined: the order is credited to another partner
}

// AutoResolveInquiries declines the brand's open UNTRACKED inquiries whose order
// is already tracked (SPEC §3.2): credited to the same partner, "This transaction
// has been tracked successfully"; only to others, "Another marketing channel was
// credited with the sale". An order counts as tracked by an action of the brand
// with its Oid (and the inquiry's tracker, when it names one) that is not
// REVERSED. INCORRECT and DECLINED inquiries are about a tracked order by
// definition, so they are left for the brand. It runs under the brand's lock, so
// never in the middle of one of its files, and is idempotent.
func (l *Ledger) AutoResolveInquiries(ctx context.Context, brand string, at time.Time) (AutoResolved, error) {
	res := AutoResolved{Brand: brand}
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		res = AutoResolved{Brand: brand}
		id, err := lockBrandBySlug(ctx, tx, brand)
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, autoResolve, id, processors.ReasonTrackedSuccessfully, processors.ReasonOtherChannel, clock(at)).
			Scan(&res.Tracked, &res.Other)
	})
	if err != nil {
		return res, fmt.Errorf("ledger: auto-resolve inquiries of %s: %w", brand, interpretError(err))
	}
	return res, nil
}

// autoResolve: $1 brand, $2 and $3 the two reasons, $4 the clock.
const autoResolve = `
WITH tracked AS (
    SELECT i.id, bool_or(a.partner_id = i.partner_id) AS same
    FROM inquiries i
    JOIN actions a ON a.brand_id = i.brand_id AND a.oid = i.oid
        AND (i.tracker_id IS NULL OR a.tracker_id = i.tracker_id) AND a.state <> 'REVERSED'
    WHERE i.brand_id = $1 AND i.status IN ('NEW', 'INCOMPLETE') AND i.type = 'UNTRACKED'
    GROUP BY i.id
),
declined AS (
    UPDATE inquiries i SET status = 'DECLINED',
        resolution_reason = CASE WHEN t.same THEN $2 ELSE $3 END,
        resolved_at = $4::timestamptz, resolved_by = 'auto-resolve', resolved_file_id = NULL, resolved_line = NULL
    FROM tracked t WHERE i.id = t.id
    RETURNING t.same
)
SELECT count(*) FILTER (WHERE same), count(*) FILTER (WHERE NOT same) FROM declined`

// Inquiry is one inquiry as `returnsd export inquiries` shows it.
type Inquiry struct {
	InquiryID        string
	PartnerID        int64
	Oid              string
	Type             string
	TrackerID        int64 // 0: not given
	TransactionDate  time.Time
	SaleAmount       *money.Amount
	ExpectedPayout   *money.Amount
	SubmittedAt      time.Time
	Status           string
	ResolutionReason string
	ResolutionNotes  string
	ActionID         int64 // the action a VALID resolution created
	ResolvedAt       *time.Time
	ResolvedBy       string
}

// InquiryQuery selects the inquiries of an export.
type InquiryQuery struct {
	Brand   string   // the brand's slug; required
	States  []string // only inquiries with these statuses; nil for every status
	Partner int64    // only this partner's inquiries; 0 for every partner
	// From and To bound the submission date: From included, To not. A zero
	// time leaves that end open.
	From, To time.Time
}

// ExportInquiries calls fn with every inquiry of the brand, in order of submission.
func (l *Ledger) ExportInquiries(ctx context.Context, brand string, fn func(Inquiry) error) error {
	return l.Inquiries(ctx, InquiryQuery{Brand: brand}, fn)
}

// Inquiries calls fn with the inquiries q selects, in order of submission. It
// streams: memory does not grow with the number of inquiries.
func (l *Ledger) Inquiries(ctx context.Context, iq InquiryQuery, fn func(Inquiry) error) error {
	id, err := brandID(ctx, l.pool, iq.Brand)
	if err != nil {
		return fmt.Errorf("ledger: export inquiries: %w", err)
	}
	rows, err := l.pool.Query(ctx, `
		SELECT inquiry_id, partner_id, oid, type, coalesce(tracker_id, 0), transaction_date,
			sale_amount::text, expected_payout::text, submitted_at, status, coalesce(resolution_reason, ''),
			coalesce(resolution_notes, ''), coalesce(action_id, 0), resolved_at, coalesce(resolved_by, '')
		FROM inquiries
		WHERE brand_id = $1 AND ($2::text[] IS NULL OR status = ANY ($2)) AND ($3::bigint = 0 OR partner_id = $3)
			AND ($4::timestamptz IS NULL OR submitted_at >= $4) AND ($5::timestamptz IS NULL OR submitted_at < $5)
		ORDER BY submitted_at, id`, id, iq.States, iq.Partner, optionalTime(iq.From), optionalTime(iq.To))
	if err != nil {
		return fmt.Errorf("ledger: export inquiries: %w", interpretError(err))
	}
	defer rows.Close()
	var q Inquiry
	var sale, expected *string
	for rows.Next() {
		if err := rows.Scan(&q.InquiryID, &q.PartnerID, &q.Oid, &q.Type, &q.TrackerID, &q.TransactionDate,
			&sale, &expected, &q.SubmittedAt, &q.Status, &q.ResolutionReason, &q.ResolutionNotes,
			&q.ActionID, &q.ResolvedAt, &q.ResolvedBy); err != nil {
			return fmt.Errorf("ledger: export inquiries: %w", err)
		}
		if q.SaleAmount, err = parseAmount(sale); err != nil {
			return fmt.Errorf("ledger: export inquiries: %s: %w", q.InquiryID, err)
		}
		if q.ExpectedPayout, err = parseAmount(expected); err != nil {
			return fmt.Errorf("ledger: export inquiries: %s: %w", q.InquiryID, err)
		}
		if err := fn(q); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: export inquiries: %w", interpretError(err))
	}
	return nil
}
