package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/money"
)

// InquiryNotice is one change of an inquiry to tell its partner: a row of the
// inquiry's history, queued for the partner's contact when it was written.
type InquiryNotice struct {
	// HistoryID names the change for good: a notice sent twice (see
	// DeliverInquiryNotices) carries it both times.
	HistoryID int64
	Recipient string // the partner's contact
	Attempt   int    // 1 on the first try

	Brand, BrandName, Timezone, Currency string
	InquiryID                            string
	PartnerID                            int64
	Oid, Type                            string
	OldStatus                            string // "" for the submission
	Status                               string
	At                                   time.Time // the change, by the clock of the file or job that made it
	Reason                               string    // DECLINED
	Notes                                string    // the brand's Resolution Notes (or the partner's Note)
	FinalPayout                          *money.Amount
	ActionID                             int64      // VALID: the created action
	AutoApprovalDate                     *time.Time // while the inquiry is NEW under a rule
}

// DeliverParams say how DeliverInquiryNotices runs.
type DeliverParams struct {
	// At is the clock: a notice that failed is not tried again before its
	// backoff has passed. Zero: now.
	At time.Time
	// Limit bounds the notices sent in one run. Default: 1000.
	Limit int
	// Send delivers one notice (mails it). It is called with the notice's row
	// locked, and its error decides: nil marks it SENT; an error keeps it
	// PENDING, to be tried again after a backoff, and ends the run (the mail
	// server is likely down: the others would fail the same way).
	Send func(ctx context.Context, n InquiryNotice) error
}

// DeliverSummary is what one delivery run did.
type DeliverSummary struct {
	Sent      int
	Failed    int   // 0 or 1: a failure ends the run
	LastError error // the failure's
	Pending   int   // notices still to send after the run (due now or later)
}

// Backoff between the attempts to send one notice: a minute, doubling, at most an hour.
const (
	noticeFirstRetry = time.Minute
	noticeMaxRetry   = time.Hour
)

// DeliverInquiryNotices sends the queued notices of inquiry changes (the
// outbox: inquiry_notices, written by the database with each history row of a
// partner with a contact), oldest change first.
//
// Each notice is claimed by locking its row (FOR UPDATE SKIP LOCKED) in a
// transaction of its own, sent while the lock is held, and marked SENT in that
// same transaction. So two runs, on one replica or several, never send one
// notice at once, and a notice marked SENT is never sent again. A run that dies
// while it sends (its connection goes, the process is killed) holds the lock no
// longer, and its notice is sent again later: the only way a notice can go out
// twice is a crash between the mail server's acceptance and the commit of SENT.
// Send must therefore make a resent notice recognisable as the same message
// (the mail uses a Message-ID made from HistoryID, which mail stores use to drop
// the copy). A change that was rolled back never reached the outbox.
func (l *Ledger) DeliverInquiryNotices(ctx context.Context, p DeliverParams) (DeliverSummary, error) {
	var sum DeliverSummary
	at := clock(p.At)
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	for sum.Sent < limit {
		found := false
		var failure error
		err := l.inTx(ctx, func(tx pgx.Tx) error {
			n, err := claimNotice(ctx, tx, at)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			found = true
			if failure = p.Send(ctx, n); failure != nil {
				msg := failure.Error()
				if len(msg) > 1000 {
					msg = msg[:1000]
				}
				_, err = tx.Exec(ctx, `UPDATE inquiry_notices SET attempts = attempts + 1, last_error = $2,
						next_attempt_at = $3::timestamptz + least($4::interval * power(2, attempts), $5::interval)
					WHERE history_id = $1`, n.HistoryID, msg, at, noticeFirstRetry, noticeMaxRetry)
			} else {
				_, err = tx.Exec(ctx, `UPDATE inquiry_notices SET state = 'SENT', sent_at = now(), attempts = attempts + 1,
						last_error = NULL WHERE history_id = $1`, n.HistoryID)
			}
			return interpretError(err)
		})
		if err != nil {
			return sum, fmt.Errorf("ledger: deliver inquiry notices: %w", err)
		}
		if !found {
			break
		}
		if failure != nil {
			sum.Failed, sum.LastError = 1, failure
			break
		}
		sum.Sent++
	}
	if err := l.pool.QueryRow(ctx, "SELECT count(*) FROM inquiry_notices WHERE state = 'PENDING'").Scan(&sum.Pending); err != nil {
		return sum, fmt.Errorf("ledger: deliver inquiry notices: %w", interpretError(err))
	}
	return sum, nil
}

// claimNotice locks the oldest notice due at at that no other run holds.
func claimNotice(ctx context.Context, tx pgx.Tx, at time.Time) (InquiryNotice, error) {
	var n InquiryNotice
	var final *string
	err := tx.QueryRow(ctx, `
		SELECT n.history_id, n.recipient, n.attempts + 1, b.slug, b.name, b.timezone, b.currency,
			i.inquiry_id, i.partner_id, i.oid, i.type, coalesce(h.old_status, ''), h.new_status, h.at,
			coalesce(h.reason, ''), coalesce(h.notes, ''), h.final_payout::text, coalesce(h.action_id, 0),
			CASE WHEN i.status = 'NEW' THEN i.auto_approve_at END
		FROM inquiry_notices n
		JOIN inquiry_history h ON h.id = n.history_id
		JOIN inquiries i ON i.id = h.inquiry
		JOIN brands b ON b.id = n.brand_id
		WHERE n.state = 'PENDING' AND n.next_attempt_at <= $1
		ORDER BY n.history_id
		LIMIT 1
		FOR UPDATE OF n SKIP LOCKED`, at).
		Scan(&n.HistoryID, &n.Recipient, &n.Attempt, &n.Brand, &n.BrandName, &n.Timezone, &n.Currency,
			&n.InquiryID, &n.PartnerID, &n.Oid, &n.Type, &n.OldStatus, &n.Status, &n.At,
			&n.Reason, &n.Notes, &final, &n.ActionID, &n.AutoApprovalDate)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return n, err
		}
		return n, fmt.Errorf("claim a notice: %w", interpretError(err))
	}
	if n.FinalPayout, err = parseAmount(final); err != nil {
		return n, fmt.Errorf("notice %d: final payout: %w", n.HistoryID, err)
	}
	return n, nil
}
