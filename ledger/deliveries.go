package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/returnsd/returnsd/internal/safetext"
)

// ReportDay names one day's mailed report: its calendar day (YYYY-MM-DD) in
// its timezone (an IANA name).
type ReportDay struct {
	Day      string
	Timezone string
}

// SentReport is what a send tells the ledger about the mail it sent.
type SentReport struct {
	Recipients []string
	MessageID  string
	By         string // who sent it: the job, the replica
}

// ReportDelivery is how a day's report was delivered.
type ReportDelivery struct {
	// Sent is true when this call sent it, false when it had been sent before.
	Sent      bool
	SentAt    time.Time
	MessageID string
	Attempts  int // sends tried, this one included
}

// ErrDeliveryBusy means another replica is sending the same day's report right
// now: ask again later, when it has either sent it or failed.
var ErrDeliveryBusy = errors.New("another replica is sending this report now")

// reportLockClass is the advisory lock namespace of report deliveries ("rp").
const reportLockClass = 0x7270

// DeliverReportOnce calls send to mail a day's report unless it was mailed
// already, and records that it was. Replicas that race for one day send one
// mail: the first takes the day's advisory lock; another gets ErrDeliveryBusy
// while it sends, and finds the day SENT once it has.
//
// Mail is an effect outside the database, so "once" is a choice of where the
// doubt goes:
//
//   - Mail, then record (in a transaction of its own): a crash or a lost
//     connection between the two sends it again on the retry.
//   - Claim in a committed row, then mail, then mark it sent: a crash between
//     claim and mail leaves a claim nobody fulfils, and the mail is lost unless
//     claims expire, which brings the double send back at the expiry's guess.
//   - What this does: hold the day's lock in an open transaction while send
//     runs, and mark the day SENT in that same transaction once the SMTP
//     server has taken the message. Whether a sender is still alive is then
//     PostgreSQL's to say, not a timer's: a crashed replica's session ends and
//     its lock with it, so a retry proceeds at once and nothing is lost. The
//     one window for a second mail is between the server's acceptance and the
//     commit, milliseconds; the mail's Message-ID is the same on every attempt
//     (see report.MessageID), so a mailbox that already has it can drop the
//     copy.
//
// A failed send rolls back and is recorded as FAILED with its error and the
// number of attempts, for ops; the caller's retry sends again. The
// transaction holds one connection, idle, for the length of the send, which
// the mailer's timeouts bound: a server whose idle_in_transaction_session_timeout
// is shorter than a send would end the session under it, and a mail that went
// out would then be sent again.
func (l *Ledger) DeliverReportOnce(ctx context.Context, day ReportDay,
	send func(ctx context.Context) (SentReport, error)) (ReportDelivery, error) {
	var d ReportDelivery
	var sendErr error
	err := l.inTx(ctx, func(tx pgx.Tx) error {
		var locked bool
		err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1, hashtext($2::text || ' ' || $3::text))",
			reportLockClass, day.Timezone, day.Day).Scan(&locked)
		if err != nil {
			return interpretError(err)
		}
		if !locked {
			return ErrDeliveryBusy
		}
		var state string
		var sentAt *time.Time
		var messageID *string
		err = tx.QueryRow(ctx, `SELECT state, sent_at, message_id, attempts FROM report_deliveries
			WHERE day = $1::date AND timezone = $2`, day.Day, day.Timezone).Scan(&state, &sentAt, &messageID, &d.Attempts)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return interpretError(err)
		case state == "SENT":
			d.SentAt = *sentAt
			if messageID != nil {
				d.MessageID = *messageID
			}
			return nil
		}
		sent, err := send(ctx)
		if err != nil {
			sendErr = err
			return err
		}
		d.Sent, d.MessageID, d.Attempts = true, sent.MessageID, d.Attempts+1
		err = tx.QueryRow(ctx, `
			INSERT INTO report_deliveries (day, timezone, state, attempts, recipients, message_id, sent_at, sent_by, last_error)
			VALUES ($1::date, $2, 'SENT', 1, coalesce($3::text[], '{}'), $4, now(), $5, NULL)
			ON CONFLICT (day, timezone) DO UPDATE SET state = 'SENT', attempts = report_deliveries.attempts + 1,
				recipients = EXCLUDED.recipients, message_id = $4, sent_at = now(), sent_by = $5, updated_at = now()
			RETURNING sent_at`, day.Day, day.Timezone, sent.Recipients, sent.MessageID, sent.By).Scan(&d.SentAt)
		return interpretError(err)
	})
	switch {
	case sendErr != nil:
		l.recordFailedDelivery(ctx, day, sendErr)
		return ReportDelivery{}, fmt.Errorf("ledger: deliver the report of %s (%s): %w", day.Day, day.Timezone, sendErr)
	case errors.Is(err, ErrDeliveryBusy):
		return ReportDelivery{}, fmt.Errorf("ledger: deliver the report of %s (%s): %w", day.Day, day.Timezone, err)
	case err != nil && d.Sent:
		// The mail went out; its record did not commit. The caller's retry
		// sends it again, under the same Message-ID.
		l.logger.ErrorContext(ctx, "report mailed but its delivery could not be recorded: it may be mailed again",
			"day", day.Day, "timezone", day.Timezone, "message_id", d.MessageID, "error", err)
		return ReportDelivery{}, fmt.Errorf("ledger: record the delivery of the report of %s (%s): %w", day.Day, day.Timezone, err)
	case err != nil:
		return ReportDelivery{}, fmt.Errorf("ledger: deliver the report of %s (%s): %w", day.Day, day.Timezone, err)
	}
	return d, nil
}

// recordFailedDelivery notes a failed send for ops, unless the day was sent
// meanwhile. It is best effort: the send's error is what the caller reports.
func (l *Ledger) recordFailedDelivery(ctx context.Context, day ReportDay, sendErr error) {
	_, err := l.pool.Exec(context.WithoutCancel(ctx), `
		INSERT INTO report_deliveries (day, timezone, state, attempts, last_error)
		VALUES ($1::date, $2, 'FAILED', 1, $3)
		ON CONFLICT (day, timezone) DO UPDATE SET attempts = report_deliveries.attempts + 1, last_error = $3, updated_at = now()
		WHERE report_deliveries.state <> 'SENT'`, day.Day, day.Timezone, safetext.Printable(sendErr.Error()))
	if err != nil {
		l.logger.WarnContext(ctx, "could not record a failed report delivery", "day", day.Day, "error", err)
	}
}

// ReportDeliveryState is what the ledger knows of a day's report mail.
type ReportDeliveryState struct {
	ReportDay
	State      string // FAILED or SENT; "" when never tried
	Attempts   int
	Recipients []string
	MessageID  string
	LastError  string
	SentAt     time.Time
	SentBy     string
}

// ReportDeliveryOf reads what became of a day's report mail.
func (l *Ledger) ReportDeliveryOf(ctx context.Context, day ReportDay) (ReportDeliveryState, error) {
	s := ReportDeliveryState{ReportDay: day}
	var messageID, lastError, sentBy *string
	var sentAt *time.Time
	err := l.pool.QueryRow(ctx, `SELECT state, attempts, recipients, message_id, last_error, sent_at, sent_by
		FROM report_deliveries WHERE day = $1::date AND timezone = $2`, day.Day, day.Timezone).
		Scan(&s.State, &s.Attempts, &s.Recipients, &messageID, &lastError, &sentAt, &sentBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("ledger: delivery of the report of %s: %w", day.Day, interpretError(err))
	}
	s.SentAt = orZero(sentAt)
	for p, v := range map[*string]*string{&s.MessageID: messageID, &s.LastError: lastError, &s.SentBy: sentBy} {
		if v != nil {
			*p = *v
		}
	}
	return s, nil
}
