// Package mailer sends mail through the configured SMTP server (config.SMTP):
// the result files of mail sources, as replies to the brand's message, and the
// daily report to ops. The
// connection is always TLS (implicit, or STARTTLS that the server must offer)
// with the certificate verified, every read and write has a deadline, and a
// cancelled context closes the connection.
//
// Each Send opens its own connection: results are few, and a connection kept
// between polls would only go stale.
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/netconn"
)

// DefaultTimeout bounds each network operation when the config gives none.
const DefaultTimeout = time.Minute

// Mailer sends mail through one SMTP server. Its zero value is not usable; call New.
type Mailer struct {
	cfg     config.SMTP
	timeout time.Duration
	now     func() time.Time
}

// New returns a Mailer for cfg (after WithDefaults). It does not connect.
func New(cfg *config.SMTP) *Mailer {
	timeout, ok := cfg.Timeout.Fixed()
	if !ok || timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Mailer{cfg: *cfg, timeout: timeout, now: time.Now}
}

// Message is one mail to send.
type Message struct {
	// To is the recipient's address (addr-spec, e.g. returns@acme.example).
	To string
	// AlsoTo are further recipients of the same message, in its To header
	// too: everyone a report goes to sees who else got it.
	AlsoTo  []string
	Subject string
	// InReplyTo is the Message-ID (without angle brackets) of the mail this one
	// answers; it sets In-Reply-To and References so the reply is threaded.
	InReplyTo string
	// MessageID, when set, is the message's Message-ID (without angle
	// brackets): a message sent again under the same one is a copy a mailbox
	// may drop. Default: a new random one.
	MessageID string
	// Text is the plain-text body.
	Text string
	// HTML, when set, is the body as HTML too: the message is then
	// multipart/alternative, Text for clients that show no HTML.
	HTML        string
	Attachments []Attachment
}

// Attachment is a file attached to a Message.
type Attachment struct {
	Name        string // the file name the recipient sees
	ContentType string // e.g. "text/csv; charset=utf-8"
	Body        io.Reader
}

// Send sends msg. The message is streamed to the server as it is written, so
// an attachment is never held in memory whole.
func (m *Mailer) Send(ctx context.Context, msg Message) error {
	from, err := netmail.ParseAddress(m.cfg.From)
	if err != nil {
		return fmt.Errorf("smtp: from %q: %w", m.cfg.From, err)
	}
	var to []*netmail.Address
	for _, addr := range append([]string{msg.To}, msg.AlsoTo...) {
		a, err := netmail.ParseAddress(addr)
		if err != nil {
			return fmt.Errorf("smtp: recipient %q: %w", addr, err)
		}
		to = append(to, a)
	}
	c, stop, err := m.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	defer stop()
	fail := func(op string, err error) error {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return fmt.Errorf("smtp: %s: %w", op, err)
	}
	if err := m.login(c); err != nil {
		return fail("login", err)
	}
	if err := c.Mail(from.Address, nil); err != nil {
		return fail("MAIL FROM "+from.Address, err)
	}
	for _, a := range to {
		if err := c.Rcpt(a.Address, nil); err != nil {
			return fail("RCPT TO "+a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if err := m.write(w, from, to, msg); err != nil {
		w.Close()
		return fail("write message", err)
	}
	if err := w.Close(); err != nil {
		return fail("send message", err)
	}
	// The server took the message (its reply to the final dot was a 250); a
	// failed goodbye loses nothing.
	_ = c.Quit()
	return nil
}

// write writes msg as a MIME message: a text part (or text and HTML
// alternatives) and the attachments, base64.
func (m *Mailer) write(w io.Writer, from *netmail.Address, to []*netmail.Address, msg Message) error {
	var h mail.Header
	h.SetDate(m.now())
	h.SetAddressList("From", []*mail.Address{{Name: from.Name, Address: from.Address}})
	var list []*mail.Address
	for _, a := range to {
		list = append(list, &mail.Address{Name: a.Name, Address: a.Address})
	}
	h.SetAddressList("To", list)
	// Encoded as UTF-8: bytes that are not are shown as U+FFFD, not passed on.
	h.SetSubject(strings.ToValidUTF8(msg.Subject, "\uFFFD"))
	if msg.MessageID != "" {
		h.SetMessageID(msg.MessageID)
	} else if err := h.GenerateMessageIDWithHostname(domainOf(from.Address)); err != nil {
		return err
	}
	// From a program, so auto-responders should not answer it (RFC 3834): a
	// reply, or (a report) a message of its own.
	if msg.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{msg.InReplyTo})
		h.SetMsgIDList("References", []string{msg.InReplyTo})
		h.Set("Auto-Submitted", "auto-replied")
	} else {
		h.Set("Auto-Submitted", "auto-generated")
	}
	mw, err := mail.CreateWriter(w, h)
	if err != nil {
		return err
	}
	if err := writeBody(mw, msg); err != nil {
		return err
	}
	for _, a := range msg.Attachments {
		var ah mail.AttachmentHeader
		ct, params, err := mime.ParseMediaType(a.ContentType)
		if err != nil {
			ct, params = "application/octet-stream", map[string]string{}
		}
		name := AttachmentName(a.Name)
		params["name"] = name
		// mime.FormatMediaType writes a non-ASCII name as RFC 2231 (name*=utf-8''...).
		ah.Set("Content-Type", mime.FormatMediaType(ct, params))
		ah.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		ah.Set("Content-Transfer-Encoding", "base64")
		aw, err := mw.CreateAttachment(ah)
		if err != nil {
			return err
		}
		if _, err := io.Copy(aw, a.Body); err != nil {
			return fmt.Errorf("attachment %s: %w", a.Name, err)
		}
		if err := aw.Close(); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writeBody writes the text part, or with msg.HTML the text and HTML
// alternatives (quoted-printable: no line of the HTML can be too long for SMTP).
func writeBody(mw *mail.Writer, msg Message) error {
	part := func(create func(mail.InlineHeader) (io.WriteCloser, error), contentType, body string) error {
		var ph mail.InlineHeader
		ph.Set("Content-Type", contentType)
		pw, err := create(ph)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(pw, body); err != nil {
			return err
		}
		return pw.Close()
	}
	if msg.HTML == "" {
		return part(mw.CreateSingleInline, "text/plain; charset=utf-8", msg.Text)
	}
	iw, err := mw.CreateInline()
	if err != nil {
		return err
	}
	if err := part(iw.CreatePart, "text/plain; charset=utf-8", msg.Text); err != nil {
		return err
	}
	if err := part(iw.CreatePart, "text/html; charset=utf-8", strings.ToValidUTF8(msg.HTML, "\uFFFD")); err != nil {
		return err
	}
	return iw.Close()
}

// AttachmentName is the name an attachment named name is sent under: name
// itself when it is UTF-8, else name with each run of bytes that are not
// UTF-8 written as "_". A name can come as raw bytes from an old mailer
// ("M\xe4rz.csv" in Latin-1); MIME writes names as UTF-8, and would declare
// those bytes UTF-8, which the brand's client shows garbled or not at all.
func AttachmentName(name string) string {
	return strings.ToValidUTF8(name, "_")
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}

// dial connects, secures the connection and greets the server. stop must be
// called when done with the client: it ends the context's hold on the connection.
func (m *Mailer) dial(ctx context.Context) (*smtp.Client, func() bool, error) {
	addr := m.cfg.Address
	tlsCfg, err := netconn.TLSConfig(addr, m.cfg.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("smtp: %w", err)
	}
	dialer := net.Dialer{Timeout: m.timeout}
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("smtp: connect %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	nc := &deadlineConn{DeadlineConn: netconn.DeadlineConn{Conn: raw, Timeout: m.timeout}}
	var c *smtp.Client
	switch m.cfg.TLS {
	case config.TLSStartTLS:
		// NewClientStartTLS fails when the server does not offer STARTTLS: mail
		// is never sent in clear.
		c, err = smtp.NewClientStartTLS(nc, tlsCfg)
	default:
		tc := tls.Client(nc, tlsCfg)
		if err = tc.HandshakeContext(ctx); err == nil {
			c = smtp.NewClient(tc)
		}
	}
	if err != nil {
		stop()
		raw.Close()
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, nil, fmt.Errorf("smtp: connect %s (tls: %s): %w", addr, m.cfg.TLS, err)
	}
	c.CommandTimeout, c.SubmissionTimeout = m.timeout, m.timeout
	return c, stop, nil
}

func (m *Mailer) login(c *smtp.Client) error {
	if m.cfg.Username == "" {
		return nil
	}
	password, err := m.cfg.Password()
	if err != nil {
		return err
	}
	return c.Auth(sasl.NewPlainClient("", m.cfg.Username, password))
}

// deadlineConn puts a deadline on every read and write, whatever the SMTP
// library sets: a server silent for longer than timeout fails the send.
type deadlineConn struct{ netconn.DeadlineConn }

func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }
