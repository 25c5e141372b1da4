package report

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/mailer"
)

// Sender sends mail; *mailer.Mailer is one.
type Sender interface {
	Send(ctx context.Context, msg mailer.Message) error
}

var _ Sender = (*mailer.Mailer)(nil)

// DeliverParams say which day's report Deliver mails, and to whom.
type DeliverParams struct {
	Day      Date
	Location *time.Location // default: UTC
	// Recipients are the addresses the report goes to, in one message. At least one.
	Recipients []string
	// From is the sender's address (the smtp section's from): its domain
	// names the report's Message-ID.
	From string
	// Now is the clock the report is built at; default time.Now.
	Now          time.Time
	SourceBrands map[string][]string
	// By names the sender in the ledger's record: the job, the replica.
	By string
}

// Deliver mails a day's report to its recipients unless it was mailed
// already, once whatever the replicas do (see ledger.DeliverReportOnce): the
// report is built and sent while the day's delivery is held, so a replica
// that finds it sent builds nothing. The message is the report as HTML with a
// text summary, and as CSV attached. An error wrapping
// ledger.ErrDeliveryBusy means another replica is sending it now.
func Deliver(ctx context.Context, l *ledger.Ledger, s Sender, p DeliverParams) (ledger.ReportDelivery, error) {
	if len(p.Recipients) == 0 {
		return ledger.ReportDelivery{}, fmt.Errorf("report: deliver %s: no recipients", p.Day)
	}
	loc := orUTC(p.Location)
	day := ledger.ReportDay{Day: p.Day.String(), Timezone: loc.String()}
	return l.DeliverReportOnce(ctx, day, func(ctx context.Context) (ledger.SentReport, error) {
		r, err := Build(ctx, l, Params{Day: p.Day, Location: loc, Now: p.Now, SourceBrands: p.SourceBrands})
		if err != nil {
			return ledger.SentReport{}, err
		}
		msg, err := Message(r, p.Recipients, MessageID(p.Day, loc, p.From))
		if err != nil {
			return ledger.SentReport{}, err
		}
		if err := s.Send(ctx, msg); err != nil {
			return ledger.SentReport{}, err
		}
		return ledger.SentReport{Recipients: p.Recipients, MessageID: msg.MessageID, By: p.By}, nil
	})
}

// MessageID is the Message-ID of a day's report mail: the same on every
// attempt, so that a second mail after a crash between sending and recording
// is a copy of the first that a mailbox can recognise and drop.
func MessageID(day Date, loc *time.Location, from string) string {
	domain := "returnsd.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	zone := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(orUTC(loc).String()))
	return fmt.Sprintf("returnsd-report-%s.%s@%s", day, zone, domain)
}

// Message is the mail of a report: a subject with the day's headline, a
// plain-text summary, the HTML report, and the CSV attached.
func Message(r *Report, recipients []string, messageID string) (mailer.Message, error) {
	var html, csv bytes.Buffer
	if err := WriteHTML(&html, r, HTMLOptions{}); err != nil {
		return mailer.Message{}, err
	}
	if err := WriteCSV(&csv, r); err != nil {
		return mailer.Message{}, err
	}
	msg := mailer.Message{Subject: Subject(r), MessageID: messageID, Text: Summary(r), HTML: html.String(),
		Attachments: []mailer.Attachment{{Name: "returnsd-report-" + r.Day.String() + ".csv",
			ContentType: "text/csv; charset=utf-8", Body: &csv}}}
	if len(recipients) > 0 {
		msg.To, msg.AlsoTo = recipients[0], recipients[1:]
	}
	return msg, nil
}

// Subject is the report mail's subject: the day and what needs looking at.
func Subject(r *Report) string {
	t := r.Totals
	s := fmt.Sprintf("returnsd daily report %s (%s): %s files, %s rows", r.Day, r.Location, groupInt(t.Files.Received), groupInt(t.Rows.Total))
	var trouble []string
	if t.Files.Quarantined > 0 {
		trouble = append(trouble, groupInt(t.Files.Quarantined)+" quarantined")
	}
	if t.Rows.Rejected > 0 {
		trouble = append(trouble, groupInt(t.Rows.Rejected)+" rows rejected")
	}
	if n := countFailing(r.FailingSources); n > 0 {
		trouble = append(trouble, groupInt(n)+" sources failing")
	}
	if len(trouble) > 0 {
		s += "; " + strings.Join(trouble, ", ")
	}
	return s
}

func countFailing(sources []Source) int {
	n := 0
	for _, s := range sources {
		if s.Failing() {
			n++
		}
	}
	return n
}

// Summary is the report in a few lines of plain text, for mail clients that
// show no HTML.
func Summary(r *Report) string {
	var b strings.Builder
	t := r.Totals
	fmt.Fprintf(&b, "Daily report %s (%s), generated %s\n\n", r.Day, r.Location, clock(r.GeneratedAt, r.Location))
	fmt.Fprintf(&b, "Files received: %s (%s completed, %s duplicate, %s quarantined, %s waiting)\n",
		groupInt(t.Files.Received), groupInt(t.Files.Completed), groupInt(t.Files.Duplicate),
		groupInt(t.Files.Quarantined), groupInt(t.Files.Waiting))
	fmt.Fprintf(&b, "Rows: %s (%s applied, %s rejected, %s duplicate)\n",
		groupInt(t.Rows.Total), groupInt(t.Rows.Applied), groupInt(t.Rows.Rejected), groupInt(t.Rows.Duplicate))
	payouts := ""
	for i, a := range t.Actions.Payouts {
		if i == 0 {
			payouts = ": "
		} else {
			payouts += ", "
		}
		payouts += groupAmount(a.Amount) + " " + a.Currency
	}
	fmt.Fprintf(&b, "Actions locked: %s; payouts: %s%s\n", groupInt(t.Actions.Locked), groupInt(t.Actions.Paid), payouts)
	resolved := 0
	for _, s := range t.Inquiries.Resolved {
		resolved += s.Inquiries
	}
	fmt.Fprintf(&b, "Inquiries: %s received, %s resolved, %s open now\n",
		groupInt(t.Inquiries.Received), groupInt(resolved), groupInt(t.Inquiries.Open))
	for _, br := range r.NegativeBalances() {
		fmt.Fprintf(&b, "Balance of %s: %s %s, %s payouts delayed\n", br.Brand, groupAmount(br.Balance), br.Currency,
			groupInt(br.DelayedPayouts))
	}
	for _, f := range r.Files {
		if f.Status == "QUARANTINED" {
			fmt.Fprintf(&b, "Quarantined: file %d of %s, %s: %s %s\n", f.ID, f.Brand, f.Name, f.Code, f.Reason)
		}
	}
	for _, s := range r.FailingSources {
		if s.Failing() {
			fmt.Fprintf(&b, "Failing source %s since %s: %s\n", s.Name, clock(s.FailingSince, r.Location), s.LastError)
		}
	}
	b.WriteString("\nThe whole report is this mail's HTML, and the attached CSV.\n")
	return b.String()
}
