// Package imap is the mail source: one IMAP mailbox shared by many brands,
// whose messages' data files are the files: the parts a brand attaches as
// data, not a signature logo, a key or a signature (parts.go), which are
// named in the reply instead. Each message is routed to a brand
// by its recipient address, taken only from a sender the route allows (and,
// with require_dmarc, only if the receiving server's Authentication-Results say
// DMARC passed), and answered with its result files through the configured
// SMTP server (package mailer).
//
// A message that must not be applied (no route, sender not allowed, DMARC not
// passing, no data file, unreadable) is listed as one file, the whole
// message as message-<uid>.eml, carrying an ingest.File.Refusal: the poller
// quarantines it and never applies it. A message moves to the processed (or,
// if any of its files was quarantined, the quarantine) mailbox once every file
// of it is acknowledged; its copies in the mailbox (the same delivery twice,
// copies.go) list no files and move with it.
//
// Messages are read with BODY.PEEK, so listing and fetching never mark them
// \Seen; a message is marked \Seen once its files are done. List reads each new
// message once, as a stream, to find its files and their exact decoded sizes,
// and keeps only that (no bytes); Fetch reads the message again and copies out
// the one part.
//
// The connection is TLS from the first byte (tls: implicit) or upgraded with
// STARTTLS, which the server must accept (tls: starttls): the password is never
// sent in clear. The server's certificate is checked against ca_file, else the
// system roots. It connects on first use, is dropped when lost and made again
// on the next call; every read and write of a call has a deadline (the
// source's timeout), and a cancelled context closes the connection.
package imap

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/internal/netconn"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/mailer"
	"github.com/returnsd/returnsd/outcome"
)

var _ ingest.Source = (*Source)(nil)

const (
	// DefaultTimeout bounds each network operation when the config gives none.
	DefaultTimeout = time.Minute
	// DefaultMaxMessageBytes bounds the messages List reads. A larger one is
	// not read (only its header, to route it) and is refused whole as
	// FILE_TOO_LARGE.
	DefaultMaxMessageBytes = 512 << 20
	// maxNewPerList bounds the new messages one List reads, oldest first; the
	// others are listed by the next polls.
	maxNewPerList = 200
)

// Source is an IMAP mailbox. Its zero value is not usable; call New.
type Source struct {
	cfg     config.Source
	timeout time.Duration
	mailer  *mailer.Mailer
	// MaxMessageBytes is DefaultMaxMessageBytes unless a test lowers it.
	MaxMessageBytes int64

	mu     sync.Mutex
	conn   *conn // nil until connected, and after a reset
	closed bool
	// messages are what List found in the mailbox, by UIDVALIDITY and UID;
	// a message stays known (and is not read again) while it is listed.
	messages map[msgKey]*message
	// files are the files of the last listing, by Path.
	files map[string]*listedFile
}

// New returns the source for cfg (an imap source after WithDefaults); its
// result files are mailed through smtp (nil: Put fails). It does not connect:
// the first call that needs the server does.
func New(cfg *config.Source, smtp *config.SMTP) *Source {
	timeout, ok := cfg.Timeout.Fixed()
	if !ok || timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Source{cfg: *cfg, timeout: timeout, MaxMessageBytes: DefaultMaxMessageBytes,
		messages: map[msgKey]*message{}, files: map[string]*listedFile{}}
	s.cfg.Mailbox = cmp.Or(s.cfg.Mailbox, config.DefaultMailbox)
	if smtp != nil && !smtp.IsZero() {
		s.mailer = mailer.New(smtp)
	}
	return s
}

type msgKey struct {
	uidValidity uint32
	uid         imap.UID
}

// message is what the source knows of one message of the mailbox.
type message struct {
	key     msgKey
	id      string // Message-ID without angle brackets; "" when it has none
	subject string
	date    time.Time // INTERNALDATE: when it arrived
	size    int64     // bytes of the whole message (BODY[])
	verdict verdict
	parts   []part
	// ignored are its parts that are not data files (a logo, a signature).
	ignored []ignoredPart
	// fingerprint is what copies of one delivery share (copies.go); nil
	// when the message was not read whole.
	fingerprint []byte
	// copies are, as of the last listing, the later copies of this message
	// in the mailbox: they list no files and are moved with it.
	copies []*message
	// whole, when set, is why the message is listed as one refused file
	// rather than by its attachments (beyond the verdict's own refusal).
	whole *ingest.Refusal

	// Of the last listing: the paths of the files the poller takes. The
	// message is moved once each of them is acknowledged.
	takeable map[string]bool
	acked    map[string]bool
	// notTaken are the parts of the message not taken as files, as the brand
	// reads them: "image001.png (inline image)".
	notTaken []string
	failed   bool // a file was quarantined, or an attachment's name is unsafe
	done     bool // moved, deleted or (after: leave) marked \Seen
}

// part is one file in a message.
type part struct {
	id   string // the IMAP part number, e.g. "2" or "3.1.2"
	name string // the decoded file name
	size int64  // decoded bytes
}

// listedFile ties a listed file to its message.
type listedFile struct {
	msg  *message
	part string // "" for the whole message
}

// List returns the files of the mailbox's messages (see the package doc).
// Messages flagged \Deleted (moved by COPY, not yet expunged) are left out.
func (s *Source) List(ctx context.Context) ([]ingest.File, error) {
	var out []ingest.File
	err := s.do(ctx, "list "+s.cfg.Mailbox, func(c *conn) error {
		uidValidity, count, err := c.selectMailbox(s.cfg.Mailbox)
		if err != nil {
			return err
		}
		var metas []*imapclient.FetchMessageBuffer
		if count > 0 {
			metas, err = c.client.Fetch(imap.SeqSet{{Start: 1, Stop: 0}},
				&imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true}).Collect()
			if err != nil {
				return err
			}
		}
		slices.SortFunc(metas, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
		known := map[msgKey]*message{}
		fresh := map[imap.UID]*message{}
		var whole, headers imap.UIDSet
		for _, meta := range metas {
			if slices.Contains(meta.Flags, imap.FlagDeleted) {
				continue
			}
			k := msgKey{uidValidity, meta.UID}
			if m, ok := s.messages[k]; ok {
				known[k] = m
				continue
			}
			if len(fresh) >= maxNewPerList {
				continue
			}
			m := &message{key: k, date: meta.InternalDate, size: meta.RFC822Size, acked: map[string]bool{}}
			fresh[meta.UID] = m
			if meta.RFC822Size > s.MaxMessageBytes {
				m.whole = &ingest.Refusal{Code: outcome.FileTooLarge, Reason: fmt.Sprintf(
					"the message is %d bytes, over the %d bytes a mail source reads; its attachments were not read", meta.RFC822Size, s.MaxMessageBytes)}
				headers.AddNum(meta.UID)
			} else {
				whole.AddNum(meta.UID)
			}
		}
		if err := s.read(c, whole, fresh, true); err != nil {
			return err
		}
		if err := s.read(c, headers, fresh, false); err != nil {
			return err
		}
		for _, m := range fresh {
			known[m.key] = m
		}
		s.messages = known
		out, s.files = s.listing(uidValidity)
		return nil
	})
	return out, err
}

// read reads the messages uids (whole, or only their headers) and records
// what they say in fresh.
func (s *Source) read(c *conn, uids imap.UIDSet, fresh map[imap.UID]*message, whole bool) error {
	if len(uids) == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	if !whole {
		section.Specifier = imap.PartSpecifierHeader
	}
	cmd := c.client.Fetch(uids, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	defer cmd.Close()
	for {
		data := cmd.Next()
		if data == nil {
			break
		}
		var uid imap.UID
		var got *reading
		// The body's literal must be read as it comes: the next item replaces it.
		for item := data.Next(); item != nil; item = data.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = item.UID
			case imapclient.FetchItemDataBodySection:
				if item.Literal == nil {
					continue
				}
				r, err := readMessage(item.Literal, whole)
				if err != nil {
					return err
				}
				got = r
			}
		}
		m := fresh[uid]
		if m == nil {
			continue
		}
		if got == nil {
			m.whole = &ingest.Refusal{Code: outcome.Undecodable, Reason: "the server sent no content for the message"}
			continue
		}
		m.id, m.subject = messageID(got.header), subject(got.header)
		m.verdict = judge(&s.cfg, got.header)
		m.parts, m.ignored, m.fingerprint = got.parts, got.ignored, got.fingerprint
		if whole {
			m.size = got.size
		}
		if got.malformed != "" && m.whole == nil {
			m.whole = &ingest.Refusal{Code: outcome.Undecodable, Reason: "the message could not be read: " + got.malformed}
		}
	}
	return cmd.Close()
}

// reading is what one read of a message found.
type reading struct {
	header  textproto.Header
	parts   []part
	ignored []ignoredPart
	size    int64
	// fingerprint, for a message read whole, is what its copies share (copies.go).
	fingerprint []byte
	malformed   string
}

// readMessage reads a message (or only its header) from r, finding its files
// and their decoded sizes. It fails only when r does (the connection); a
// message that cannot be parsed is a reading with malformed set.
func readMessage(r io.Reader, whole bool) (*reading, error) {
	cr := &countingReader{r: sourceReader{r}}
	bh := newBodyHasher()
	src := io.Reader(cr)
	if whole {
		src = io.TeeReader(cr, bh)
	}
	got := &reading{}
	var err error
	if whole {
		got.header, err = walkMessage(src, func(p walkedPart, body io.Reader) error {
			if p.notData != "" {
				got.ignored = append(got.ignored, ignoredPart{id: p.id, name: p.name, kind: p.notData})
				return nil
			}
			n, err := io.Copy(io.Discard, body)
			if err != nil {
				return err
			}
			got.parts = append(got.parts, part{id: p.id, name: p.name, size: n})
			return nil
		})
	} else {
		got.header, _, err = readHeader(cr)
	}
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			return nil, err
		}
		got.malformed = err.Error()
	}
	// The rest (an epilogue, or what a parse error left) counts toward the
	// size Fetch delivers.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, err
	}
	got.size = cr.n
	if whole {
		got.fingerprint = bh.fingerprint(got.header)
	}
	return got, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// messageID is the message's Message-ID without angle brackets, or "" when
// it has none that can key its files: one that is not printable UTF-8 (an
// old mailer's raw 8-bit bytes) could not be recorded, and would stop every
// poll of the mailbox; such a message is keyed by its UID instead.
func messageID(h textproto.Header) string {
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	id, err := mh.MessageID()
	if err != nil || id == "" {
		id = strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	}
	if !utf8.ValidString(id) || safetext.Printable(id) != id || strings.ContainsAny(id, " <>") {
		return ""
	}
	return id
}

func subject(h textproto.Header) string {
	return decodeWords(strings.TrimSpace(h.Get("Subject")))
}

// listing builds the files of the known messages, oldest (by UID) first.
//
// A file's Path is brand/<Message-ID>/part ("acme/<abc@acme.example>/2"):
// keyed by Message-ID, it stays the same when the mailbox is rebuilt with new
// UIDs (a UIDVALIDITY change), so nothing is taken as new. A message without
// a Message-ID, or a later one reusing it with other content, is keyed by
// brand/uid:UIDVALIDITY:UID instead; if such a message comes back under new
// UIDs, the ledger still sees its files' bytes were applied (DUPLICATE_FILE).
// A later copy of the same delivery (copies.go) lists no file of its own: it
// is moved with the first.
func (s *Source) listing(uidValidity uint32) ([]ingest.File, map[string]*listedFile) {
	msgs := make([]*message, 0, len(s.messages))
	for _, m := range s.messages {
		msgs = append(msgs, m)
		m.copies = nil
	}
	slices.SortFunc(msgs, func(a, b *message) int { return cmp.Compare(a.key.uid, b.key.uid) })
	var out []ingest.File
	files := map[string]*listedFile{}
	byID := map[string][]*message{} // the messages listed with their files, by brand and Message-ID
	for _, m := range msgs {
		brand := cmp.Or(m.verdict.brand, "-")
		key := brand + "\x00" + m.id
		base := fmt.Sprintf("%s/uid:%d:%d", brand, uidValidity, m.key.uid)
		if m.id != "" {
			if i := slices.IndexFunc(byID[key], func(o *message) bool { return sameDelivery(o, m) }); i >= 0 {
				first := byID[key][i]
				first.copies = append(first.copies, m)
				m.takeable = map[string]bool{}
				continue
			}
			if len(byID[key]) == 0 {
				base = brand + "/<" + m.id + ">"
			}
			byID[key] = append(byID[key], m)
		}
		listed := s.filesOf(m, base)
		reply := m.reply()
		for _, lf := range listed {
			lf.file.Reply = reply
			out = append(out, lf.file)
			files[lf.file.Path] = &listedFile{msg: m, part: lf.part}
		}
	}
	return out, files
}

// reply is whom the files of the message are answered: its sender, in
// reply to it, naming what of it was not taken. A sender refused (not
// allowed, not authenticated) is never answered, so none is recorded.
func (m *message) reply() ingest.Reply {
	if r := m.verdict.refusal; r != nil && r.Code.SenderRefused() {
		return ingest.Reply{}
	}
	return ingest.Reply{To: m.verdict.from, InReplyTo: m.id, NotTaken: slices.Clone(m.notTaken)}
}

type filePart struct {
	file ingest.File
	part string
}

// filesOf lists a message's files: its data files, or the whole message when
// it is refused or has no data file to take. It sets the message's takeable
// files and what it holds that is not taken.
func (s *Source) filesOf(m *message, base string) []filePart {
	m.takeable = map[string]bool{}
	m.notTaken = nil
	for _, p := range m.ignored {
		m.notTaken = append(m.notTaken, p.String())
	}
	refusal := m.verdict.refusal
	if refusal == nil {
		refusal = m.whole
	}
	var out []filePart
	if refusal == nil {
		for _, p := range m.parts {
			f := ingest.File{Name: p.name, Path: base + "/" + p.id, Size: p.size, ModTime: m.date, Brand: m.verdict.brand}
			out = append(out, filePart{f, p.id})
			switch {
			case !ingest.SafeName(p.name):
				// The poller refuses it; the message goes to quarantine once
				// its other files are done.
				m.failed = true
				m.notTaken = append(m.notTaken, `"`+safetext.Printable(p.name)+`" (not a plain file name)`)
			case filename.IsOurs(p.name):
				m.notTaken = append(m.notTaken, safetext.Printable(p.name)+" (a result file of returnsd's)")
			case !wanted(p.name, &s.cfg):
				_, why := ingest.Wanted(p.name, s.cfg.Include, s.cfg.Exclude)
				m.notTaken = append(m.notTaken, safetext.Printable(p.name)+" ("+why+")")
			default:
				m.takeable[f.Path] = true
			}
		}
		if len(m.takeable) > 0 {
			return out
		}
		refusal = &ingest.Refusal{Code: outcome.NoAttachment, Reason: noDataFile(m.notTaken)}
	}
	f := ingest.File{Name: fmt.Sprintf("message-%d.eml", m.key.uid), Path: base + "/message", Size: m.size,
		ModTime: m.date, Brand: m.verdict.brand, Refusal: refusal}
	m.takeable = map[string]bool{f.Path: true}
	return []filePart{{f, ""}}
}

// noDataFile is the reason a message without a file to take is quarantined.
func noDataFile(held []string) string {
	what := "it has no attachment"
	if len(held) > 0 {
		what = "it holds " + andList(held)
	}
	return "the message has no data file: " + what + "; attach the CSV/XLSX/ZIP/GZ file"
}

// andList joins "a", "a and b", "a, b and c".
func andList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// Fetch writes the file's decoded bytes (or, for a refused message, the whole
// message) to w, reading the message again with BODY.PEEK.
func (s *Source) Fetch(ctx context.Context, f ingest.File, w io.Writer) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("imap: %q is not a plain file name", f.Name)
	}
	return s.do(ctx, "fetch "+safetext.Printable(f.Name), func(c *conn) error {
		lf := s.files[f.Path]
		if lf == nil {
			return fmt.Errorf("%s was not listed", f.Path)
		}
		m := lf.msg
		uidValidity, _, err := c.selectMailbox(s.cfg.Mailbox)
		if err != nil {
			return err
		}
		if uidValidity != m.key.uidValidity {
			return fmt.Errorf("the mailbox was rebuilt (UIDVALIDITY %d, listed under %d): %w", uidValidity, m.key.uidValidity, ingest.ErrNotStable)
		}
		cmd := c.client.Fetch(imap.UIDSetNum(m.key.uid), &imap.FetchOptions{UID: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
		defer cmd.Close()
		found := false
		for data := cmd.Next(); data != nil; data = cmd.Next() {
			for item := data.Next(); item != nil; item = data.Next() {
				body, ok := item.(imapclient.FetchItemDataBodySection)
				if !ok || body.Literal == nil || found {
					continue
				}
				found = true
				if err := copyPart(w, sourceReader{body.Literal}, lf.part); err != nil {
					return err
				}
			}
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("message UID %d is no longer in %s: %w", m.key.uid, s.cfg.Mailbox, ingest.ErrNotStable)
		}
		return nil
	})
}

// copyPart copies the part id of the message r (all of r when id is "") to w.
func copyPart(w io.Writer, r io.Reader, id string) error {
	if id == "" {
		_, err := io.Copy(w, r)
		return err
	}
	_, err := walkMessage(r, func(p walkedPart, body io.Reader) error {
		if p.id != id || p.notData != "" {
			return nil
		}
		if _, err := io.Copy(w, body); err != nil {
			return err
		}
		return errStop
	})
	switch {
	case errors.Is(err, errStop):
		return nil
	case err == nil:
		return fmt.Errorf("part %s is not in the message: %w", id, ingest.ErrNotStable)
	}
	return err
}

// Put mails the result file to the sender of f's message, as a reply to it
// (In-Reply-To its Message-ID), through the configured SMTP server: both as
// f.Reply says, which List recorded, so a file answered later (after a
// restart, from another replica, run again by ops) needs no listing.
func (s *Source) Put(ctx context.Context, f ingest.File, name string, r io.Reader) error {
	if !ingest.SafeName(name) {
		return fmt.Errorf("imap: %q is not a plain file name", name)
	}
	// Names are shown escaped (a raw 8-bit name of an old mailer is not UTF-8);
	// the attachment is named as the mailer can write it.
	shown, attachment := safetext.Printable(f.Name), mailer.AttachmentName(name)
	switch {
	case f.Reply.To == "":
		return fmt.Errorf("imap: mail %s: no sender of %s is recorded to answer", attachment, shown)
	case s.mailer == nil:
		return fmt.Errorf("imap: mail %s: no smtp server is configured", attachment)
	}
	subject, text := "Result of "+shown, fmt.Sprintf("The file %s you sent was processed.\r\n\r\n"+
		"The attached %s lists every row of it with its outcome: APPLIED, REJECTED (with an error code\r\n"+
		"and a message), or DUPLICATE_ROW.\r\n", shown, attachment)
	if filename.IsReceipt(name) {
		subject, text = "Not processed: "+shown, fmt.Sprintf("The file %s you sent could not be processed, and nothing of it\r\n"+
			"was applied. The attached %s says why; send the file again once it is mended.\r\n", shown, attachment)
	}
	if len(f.Reply.NotTaken) > 0 {
		text += "\r\nThese parts of your message were not taken as data files:\r\n" +
			"ignored: " + strings.Join(f.Reply.NotTaken, ", ") + "\r\n"
	}
	// The result is written in the brand's own encoding, which may not be
	// UTF-8: no charset is claimed for it.
	err := s.mailer.Send(ctx, mailer.Message{
		To:          f.Reply.To,
		Subject:     subject,
		InReplyTo:   f.Reply.InReplyTo,
		Text:        text,
		Attachments: []mailer.Attachment{{Name: attachment, ContentType: "text/csv", Body: r}},
	})
	if err != nil {
		return fmt.Errorf("imap: mail %s to %s: %w", attachment, f.Reply.To, err)
	}
	return nil
}

// Ack notes that f is done. Once every file of its message is, the message
// and its copies in the mailbox (copies.go) are marked \Seen and moved (UID
// MOVE, or COPY, \Deleted and UID EXPUNGE where the server has no MOVE) to
// the processed mailbox, or to the quarantine mailbox if any of its files was
// quarantined; or deleted, or left, per after.
// A file that is not listed (its message moved before) is acknowledged already.
func (s *Source) Ack(ctx context.Context, f ingest.File, d ingest.Disposition) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("imap: %q is not a plain file name", f.Name)
	}
	s.mu.Lock()
	lf := s.files[f.Path]
	if lf == nil {
		s.mu.Unlock()
		return nil
	}
	m := lf.msg
	m.acked[f.Path] = true
	if d == ingest.Failed {
		m.failed = true
	}
	ready := true
	for p := range m.takeable {
		ready = ready && m.acked[p]
	}
	// The message and its copies not yet moved (a copy may come after the
	// message was done, where after: leave keeps it listed).
	var todo []*message
	for _, x := range append([]*message{m}, m.copies...) {
		if ready && !x.done {
			todo = append(todo, x)
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	var uids imap.UIDSet
	for _, x := range todo {
		uids.AddNum(x.key.uid)
	}
	return s.do(ctx, fmt.Sprintf("acknowledge message UID %s", uids), func(c *conn) error {
		uidValidity, _, err := c.selectMailbox(s.cfg.Mailbox)
		if err != nil {
			return err
		}
		if uidValidity != m.key.uidValidity {
			return fmt.Errorf("the mailbox was rebuilt (UIDVALIDITY %d, listed under %d); it is acknowledged on the next poll",
				uidValidity, m.key.uidValidity)
		}
		if err := c.client.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
			return err
		}
		switch s.cfg.After {
		case config.AfterDelete:
			if err := c.client.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
				Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				return err
			}
			if err := c.expunge(uids); err != nil {
				return err
			}
		case config.AfterLeave:
		default:
			to := s.cfg.ProcessedMailbox
			if m.failed {
				to = s.cfg.QuarantineMailbox
			}
			if err := c.ensureMailbox(to); err != nil {
				return err
			}
			// Without MOVE, imapclient copies, flags \Deleted and expunges (by
			// UID where the server has UIDPLUS).
			if _, err := c.client.Move(uids, to).Wait(); err != nil {
				return err
			}
		}
		for _, x := range todo {
			x.done = true
		}
		return nil
	})
}

// Close closes the connection. The source may not be used after.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.resetLocked()
	return nil
}

// conn is one logged-in IMAP connection.
type conn struct {
	raw    net.Conn
	dc     *deadlineConn
	client *imapclient.Client
	exists map[string]bool // mailboxes known to exist
}

// selectMailbox selects the mailbox afresh (so new messages and a changed
// UIDVALIDITY are seen) and returns its UIDVALIDITY and message count.
func (c *conn) selectMailbox(name string) (uint32, uint32, error) {
	data, err := c.client.Select(name, nil).Wait()
	if err != nil {
		return 0, 0, err
	}
	return data.UIDValidity, data.NumMessages, nil
}

// ensureMailbox creates the mailbox unless it exists.
func (c *conn) ensureMailbox(name string) error {
	if c.exists[name] {
		return nil
	}
	list, err := c.client.List("", name, nil).Collect()
	if err != nil {
		return err
	}
	found := false
	for _, l := range list {
		found = found || l.Mailbox == name
	}
	if !found {
		err := c.client.Create(name, nil).Wait()
		var ie *imap.Error
		if err != nil && !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
			return fmt.Errorf("create mailbox %s: %w", name, err)
		}
	}
	c.exists[name] = true
	return nil
}

// expunge expunges the messages uids, flagged \Deleted: by UID where the
// server has UIDPLUS, else every \Deleted message of the mailbox.
func (c *conn) expunge(uids imap.UIDSet) error {
	if c.client.Caps().Has(imap.CapUIDPlus) {
		return c.client.UIDExpunge(uids).Close()
	}
	return c.client.Expunge().Close()
}

// do runs one operation on the connection (connecting first if needed) with
// the deadline armed. A cancelled ctx closes the connection, which ends the
// operation; any failure other than the server's own NO or BAD drops the
// connection, so the next call connects again.
func (s *Source) do(ctx context.Context, op string, fn func(*conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("imap: %s: source is closed", op)
	}
	c, err := s.connectLocked(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	c.dc.arm(true)
	err = fn(c)
	c.dc.arm(false)
	if !stop() || lostConnection(err) {
		s.resetLocked()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return fmt.Errorf("imap: %s: %w", op, err)
	}
	return nil
}

// lostConnection says whether err may have left the connection unusable:
// anything but a NO or BAD from the server.
func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	var ie *imap.Error
	return !errors.As(err, &ie)
}

func (s *Source) resetLocked() {
	if s.conn == nil {
		return
	}
	c := s.conn
	s.conn = nil
	c.client.Close()
}

// connectLocked returns the live connection, making one if there is none (or
// the server closed it).
func (s *Source) connectLocked(ctx context.Context) (*conn, error) {
	if s.conn != nil {
		select {
		case <-s.conn.client.Closed():
			s.resetLocked()
		default:
			return s.conn, nil
		}
	}
	addr := s.cfg.Address
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	password, err := s.cfg.Password()
	if err != nil {
		return nil, fmt.Errorf("imap: %w", err)
	}
	dialer := net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imap: connect %s: %w", addr, err)
	}
	dc := &deadlineConn{Conn: raw, timeout: s.timeout}
	dc.arm(true)
	defer dc.arm(false)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	fail := func(what string, err error) (*conn, error) {
		raw.Close()
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, fmt.Errorf("imap: %s %s: %w", what, addr, err)
	}
	opts := &imapclient.Options{TLSConfig: tlsCfg}
	var client *imapclient.Client
	switch s.cfg.TLS {
	case config.TLSStartTLS:
		// NewStartTLS fails unless the server upgrades the connection: the
		// password is never sent in clear.
		client, err = imapclient.NewStartTLS(dc, opts)
		if err != nil {
			return fail("STARTTLS with", err)
		}
	default:
		tc := tls.Client(dc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("TLS handshake with", err)
		}
		client = imapclient.New(tc, opts)
	}
	if err := client.WaitGreeting(); err != nil {
		client.Close()
		return fail("greeting from", err)
	}
	if err := client.Login(s.cfg.Username, password).Wait(); err != nil {
		client.Close()
		return fail("login as "+s.cfg.Username+" at", err)
	}
	s.conn = &conn{raw: raw, dc: dc, client: client, exists: map[string]bool{}}
	return s.conn, nil
}

// tlsConfig verifies the server's certificate against ca_file, else the
// system roots, for the host of the address.
func (s *Source) tlsConfig() (*tls.Config, error) {
	cfg, err := netconn.TLSConfig(s.cfg.Address, s.cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("imap: %w", err)
	}
	cfg.NextProtos = []string{"imap"}
	return cfg, nil
}

// deadlineConn puts the source's deadlines on the connection, in place of
// imapclient's own: while an operation runs (armed), every read and write must
// make progress within timeout; between operations the connection idles
// without a read deadline (the client reads in the background all the time).
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	mu      sync.Mutex
	armed   bool
}

func (c *deadlineConn) arm(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = on
	if on {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	} else {
		c.Conn.SetReadDeadline(time.Time{})
	}
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if c.armed {
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(b)
}

func (c *deadlineConn) SetDeadline(time.Time) error      { return nil }
func (c *deadlineConn) SetReadDeadline(time.Time) error  { return nil }
func (c *deadlineConn) SetWriteDeadline(time.Time) error { return nil }

func wanted(name string, cfg *config.Source) bool {
	ok, _ := ingest.Wanted(name, cfg.Include, cfg.Exclude)
	return ok
}
