package daemon

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/mailer"
)

// PartnerMailer tells partners, by mail through the smtp section, about each
// change of their inquiries (ledger.DeliverInquiryNotices's Send).
type PartnerMailer struct {
	mailer *mailer.Mailer
	domain string // of smtp.from, for the Message-IDs
}

// NewPartnerMailer mails through cfg (after WithDefaults and Validate).
func NewPartnerMailer(cfg *config.SMTP) *PartnerMailer {
	domain := "localhost"
	if a, err := mail.ParseAddress(cfg.From); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	return &PartnerMailer{mailer: mailer.New(cfg), domain: domain}
}

// Send mails one notice to the partner's contact.
func (p *PartnerMailer) Send(ctx context.Context, n ledger.InquiryNotice) error {
	return p.mailer.Send(ctx, p.Message(n))
}

// MessageID is the Message-ID of a notice's mail: made from the change it
// tells, so a notice sent again (a crash between the mail server's acceptance
// and the record of it) is the same message, which mail stores drop as a copy.
func (p *PartnerMailer) MessageID(n ledger.InquiryNotice) string {
	return fmt.Sprintf("returnsd.inquiry.%d.%s@%s", n.HistoryID, n.Brand, p.domain)
}

// Message is the mail of one notice: a subject that says what happened, and
// the inquiry as the partner's own list shows it.
func (p *PartnerMailer) Message(n ledger.InquiryNotice) mailer.Message {
	loc, err := time.LoadLocation(n.Timezone)
	if err != nil {
		loc = time.UTC
	}
	day := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") }
	payout, action := "", ""
	if n.FinalPayout != nil {
		payout = n.FinalPayout.String() + " " + n.Currency
	}
	if n.ActionID != 0 {
		action = fmt.Sprint(n.ActionID)
	}
	var what, next string
	switch {
	case n.OldStatus == "" && n.Status == "NEW":
		what = "received"
		next = fmt.Sprintf("It waits for %s to review it.", n.BrandName)
	case n.Status == "NEW":
		what = "completed, back with the brand"
		next = fmt.Sprintf("It waits for %s to review it again.", n.BrandName)
	case n.Status == "INCOMPLETE":
		what = "incomplete: more information needed"
		next = "Send the inquiry again with the same Inquiry Id, Order Id and Type, with the information asked for, to complete it."
	case n.Status == "VALID":
		what = "approved, final payout " + payout
		next = "A new action credits you with the payout under your contract with " + n.BrandName + "."
	case n.Status == "DECLINED":
		what = "declined: " + n.Reason
	default:
		what = strings.ToLower(n.Status)
	}
	if n.AutoApprovalDate != nil && n.Status == "NEW" {
		next += fmt.Sprintf(" Unless %s resolves it first, it is approved automatically on %s.", n.BrandName, day(*n.AutoApprovalDate))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Your action inquiry %s with %s was %s.\r\n", n.InquiryID, n.BrandName, what)
	if next != "" {
		fmt.Fprintf(&b, "%s\r\n", strings.TrimSpace(next))
	}
	b.WriteString("\r\n")
	for _, f := range []struct{ name, value string }{
		{"Inquiry Id", n.InquiryID},
		{"Brand", n.BrandName},
		{"Partner", fmt.Sprint(n.PartnerID)},
		{"Order Id", n.Oid},
		{"Type", n.Type},
		{"Status", n.Status},
		{"Resolution Reason", n.Reason},
		{"Notes", n.Notes},
		{"Final Payout", payout},
		{"Action Id", action},
		{"Changed", day(n.At)},
	} {
		if f.value != "" {
			fmt.Fprintf(&b, "%-18s %s\r\n", f.name+":", f.value)
		}
	}
	fmt.Fprintf(&b, "\r\nThis message was sent automatically; the list of your inquiries is in the status file your platform sends you.\r\n")
	return mailer.Message{
		To:        n.Recipient,
		Subject:   fmt.Sprintf("Inquiry %s (%s, order %s): %s", n.InquiryID, n.BrandName, n.Oid, what),
		MessageID: p.MessageID(n),
		Text:      b.String(),
	}
}
