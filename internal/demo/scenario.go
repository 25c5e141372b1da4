package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/returnsd/returnsd"
	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// The story the demo tells, from fixtures/ (fixtures/README.md describes each file).

// Sources of the demo's config.
const (
	sourceSFTP = "acme-sftp"     // acme's own SFTP server, which returnsd polls
	sourceDrop = "globex-drop"   // a local folder globex's files arrive in
	sourceMail = "returns-inbox" // the platform's mailbox, for every brand
)

// fixturesAsOf is the day the fixtures are written as of: their orders,
// inquiries and lock dates make the story they tell on that day (nothing is
// locked yet; one inquiry's order is old enough to be paid at once).
var fixturesAsOf = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// seed is a file the platform loads before the brands' files arrive, as
// `returnsd import` does.
type seed struct {
	brand   string
	kind    processors.Kind
	fixture string
	about   string
}

var seeds = []seed{
	{"acme", processors.Actions, "acme_actions.csv", "acme's tracking export"},
	{"acme", processors.Inquiries, "acme_inquiries.csv", "partners' inquiries about acme orders"},
	{"globex", processors.Actions, "globex_actions.csv", "globex's tracking export"},
}

// arrival is a file a brand sends, and the source it comes through.
type arrival struct {
	source  string
	fixture string // for the mail: the message, whose attachment is the file
	about   string
	// name is the file's name as the brand gave it: the fixture's, or the
	// attachment's (set by readMail).
	name string
}

var arrivals = []arrival{
	{source: sourceSFTP, fixture: "acme_returns.csv",
		about: "reversals, a modification, an approval, and rows that must be rejected"},
	{source: sourceSFTP, fixture: "acme_resolutions.csv",
		about: "acme's decisions on partners' inquiries"},
	{source: sourceDrop, fixture: "Retouren_KW47.csv",
		about: "windows-1252, ';', decimal commas, German headers"},
	{source: sourceDrop, fixture: "Gutschriften_KW47.csv",
		about: "a credit-note list, not a returns file: no Grund (reason) column"},
	{source: sourceMail, fixture: "acme_corrections.eml",
		about: "mailed from Outlook by acme's finance team: corrections of rejected rows"},
}

// fixture reads a file of fixtures/.
func fixture(name string) ([]byte, error) {
	data, err := returnsd.Fixtures.ReadFile("fixtures/" + name)
	if err != nil {
		return nil, fmt.Errorf("demo: fixture %s: %w", name, err)
	}
	return data, nil
}

// dateShift is how many days the loaded fixtures' dates are moved forward so
// that today is, to them, fixturesAsOf: the demo tells the same story on any day.
func dateShift(now time.Time) int {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	return int(today.Sub(fixturesAsOf).Hours() / 24)
}

// cellDate is an ISO date starting a cell (of any delimiter, quoted or not).
var cellDate = regexp.MustCompile(`(?m)(?:^|[,;\t|"])(\d{4}-\d{2}-\d{2})`)

// shiftDates moves every ISO date that is a cell, or starts one as a date and
// time does (2026-11-02T10:15:00-05:00, 2026-11-02 10:15), by days, keeping
// the time of day and the offset. Dates inside other text (an order id such as
// ORD-2026-11-02-X) are left alone.
func shiftDates(data []byte, days int) []byte {
	if days == 0 {
		return data
	}
	var out []byte
	last := 0
	for _, m := range cellDate.FindAllSubmatchIndex(data, -1) {
		start, end := m[2], m[3]
		if end < len(data) && !strings.ContainsRune("T ,;\t|\"\r\n", rune(data[end])) {
			continue // a longer cell that starts like a date
		}
		d, err := time.Parse(time.DateOnly, string(data[start:end]))
		if err != nil {
			continue
		}
		out = append(append(out, data[last:start]...), d.AddDate(0, 0, days).Format(time.DateOnly)...)
		last = end
	}
	return append(out, data[last:]...)
}

// seeded is a seed once loaded.
type seeded struct {
	seed
	sum ledger.Summary
}

// load imports the seeds into the ledger through the pipeline, as `returnsd
// import` would, in the platform's canonical format (UTF-8, '.' decimals,
// SPEC §8) whatever the brand's own file_format says.
func load(ctx context.Context, cfg *config.Config, p *pipeline.Pipeline, dir string, shift int) ([]seeded, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var out []seeded
	for _, s := range seeds {
		b, err := cfg.Brand(s.brand)
		if err != nil {
			return nil, err
		}
		data, err := fixture(s.fixture)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, s.fixture)
		if err := os.WriteFile(path, shiftDates(data, shift), 0o644); err != nil {
			return nil, err
		}
		res, err := p.Process(ctx, pipeline.Params{Brand: s.brand, Format: processors.Format{Location: b.Location()},
			Source: "cli", Actor: "cli:demo", Path: path, Kind: s.kind})
		if err != nil {
			return nil, fmt.Errorf("demo: load %s: %w", s.fixture, err)
		}
		if res.Status != outcome.Completed {
			return nil, fmt.Errorf("demo: load %s: %s: %s", s.fixture, res.Status, res.Reason)
		}
		out = append(out, seeded{seed: s, sum: res.Summary})
	}
	return out, nil
}

// message is the mail that arrives, as its reader sees it.
type message struct {
	raw        []byte
	from       string
	subject    string
	attachment string
}

// readMail reads the fixture mail: who sent it, about what, and the name of
// the file it carries.
func readMail(name string) (*message, error) {
	raw, err := fixture(name)
	if err != nil {
		return nil, err
	}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", name, err)
	}
	defer r.Close()
	m := &message{raw: raw}
	if from, err := r.Header.AddressList("From"); err == nil && len(from) == 1 {
		m.from = from[0].Address
	}
	m.subject, _ = r.Header.Subject()
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", name, err)
		}
		if h, ok := part.Header.(*mail.AttachmentHeader); ok {
			if m.attachment, err = h.Filename(); err != nil {
				return nil, fmt.Errorf("demo: %s: %w", name, err)
			}
		}
	}
	if m.from == "" || m.attachment == "" {
		return nil, fmt.Errorf("demo: %s: no sender or no attachment", name)
	}
	return m, nil
}

// replyMail is a mail the SMTP server received, read for printing.
type replyMail struct {
	from, to, subject, inReplyTo string
	attachment                   string
	body                         []byte
}

func readReply(data []byte) (*replyMail, error) {
	r, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m := &replyMail{from: r.Header.Get("From"), to: r.Header.Get("To"), inReplyTo: r.Header.Get("In-Reply-To")}
	m.subject, _ = r.Header.Subject()
	for {
		part, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h, ok := part.Header.(*mail.AttachmentHeader); ok {
			m.attachment, _ = h.Filename()
			if m.body, err = io.ReadAll(part.Body); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// decodeWords makes an RFC 2047 header readable.
func decodeWords(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return strings.TrimSpace(s)
}
