package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// watcher watches the files sent until they are done, and reports them.
type watcher struct {
	ledger *ledger.Ledger
	cfg    *config.Config
	srv    *servers
	sent   []sentFile
	files  map[int]ledger.ReceivedFile // what the ledger says of sent[i], once received
}

// waitDone waits until every file sent is done (its outcome committed, its
// answer delivered, its source's copy acknowledged) and the lifecycle has
// run since (no action is left APPROVED: the lifecycle locks them), within
// wait. It returns early if the daemon exits or ctx is done.
func (w *watcher) waitDone(ctx context.Context, wait time.Duration, daemonExited <-chan struct{}) error {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		pending, err := w.pending(ctx)
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil && len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-daemonExited:
			return errors.New("the daemon stopped before the files were processed")
		case <-deadline.C:
			return fmt.Errorf("not everything was processed within %s (--wait): %s; the daemon's log says more",
				wait, strings.Join(pending, "; "))
		case <-tick.C:
		}
	}
}

// pending says what is not done yet, one phrase each.
func (w *watcher) pending(ctx context.Context) ([]string, error) {
	received, err := w.ledger.ReceivedFiles(ctx, 0, 1000)
	if err != nil {
		return nil, err
	}
	w.files = map[int]ledger.ReceivedFile{}
	var pending []string
	for i, s := range w.sent {
		j := slices.IndexFunc(received, func(f ledger.ReceivedFile) bool { return f.Source == s.source && f.Name == s.name })
		if j < 0 {
			pending = append(pending, fmt.Sprintf("%s: not received yet", s.name))
			continue
		}
		f := received[j]
		w.files[i] = f
		if f.Status == outcome.Received {
			pending = append(pending, fmt.Sprintf("%s: received, not yet applied", s.name))
			continue
		}
		acked, err := w.acknowledged(s)
		if err != nil {
			return nil, err
		}
		if !acked {
			pending = append(pending, fmt.Sprintf("%s: %s, not yet answered and acknowledged", s.name, f.Status))
		}
	}
	if len(pending) > 0 {
		return pending, nil
	}
	for _, b := range w.cfg.Brands {
		approved := 0
		err := w.ledger.ExportActions(ctx, b.ID, func(a ledger.Action) error {
			if a.State == "APPROVED" {
				approved++
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if approved > 0 {
			pending = append(pending, fmt.Sprintf("%s: %d actions APPROVED, not yet locked by the lifecycle", b.ID, approved))
		}
	}
	return pending, nil
}

// acknowledged says whether the source's copy of a file is done with: the
// file moved out of its folder (to processed/ or failed/), the message out
// of the inbox. A source acknowledges a file only after its answer went out.
func (w *watcher) acknowledged(s sentFile) (bool, error) {
	if s.mail != nil {
		msgs, err := w.srv.imap.Messages("INBOX")
		return err == nil && len(msgs) == 0, err
	}
	_, err := os.Stat(s.at)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	return false, err
}

// report prints what happened to every file, where the answers are, the
// reply mail, and the brands' balances.
func (w *watcher) report(ctx context.Context, out io.Writer) error {
	section(out, "What happened to each file")
	for i, s := range w.sent {
		f := w.files[i]
		fmt.Fprintf(out, "  %s (%s, via %s): ", safetext.Printable(s.name), f.Brand, s.source)
		switch f.Status {
		case outcome.Quarantined:
			fmt.Fprintf(out, "QUARANTINED\n")
			wrap(out, string(f.Code)+": "+safetext.Printable(f.Reason))
		case outcome.DuplicateFile:
			fmt.Fprintf(out, "DUPLICATE_FILE\n")
			wrap(out, safetext.Printable(f.Reason)+"; nothing changed")
		default:
			sum, err := w.ledger.FileSummary(ctx, f.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s, %d rows: %d applied, %d rejected, %d duplicate\n",
				f.Status, sum.Rows, sum.Applied, sum.Rejected, sum.Duplicate)
			if codes := byCode(sum); codes != "" {
				wrap(out, codes)
			}
		}
	}

	section(out, "Where the answers are")
	var first string // the first result file, shown below
	for _, s := range w.sent {
		if s.mail != nil {
			fmt.Fprintf(out, "  %s: the result was mailed back to %s (below); the message moved to %s\n",
				s.name, s.mail.from, w.mailbox())
			continue
		}
		answers := w.answers(s)
		for _, a := range answers {
			fmt.Fprintf(out, "  %s: %s\n", s.name, a)
			if first == "" && strings.HasPrefix(filepath.Base(a), "result_") {
				first = a
			}
		}
		if len(answers) == 0 {
			fmt.Fprintf(out, "  %s: no result or receipt found in %s\n", s.name, w.srv.results[s.source])
		}
		fmt.Fprintf(out, "  %s: moved to %s\n", s.name, w.movedTo(s))
	}
	if first != "" {
		section(out, "The result file acme gets back: "+first)
		if err := printResult(out, first, nil); err != nil {
			return err
		}
	}

	section(out, "The reply mail, as the SMTP server received it")
	mails := w.srv.smtp.Mail()
	if len(mails) == 0 {
		fmt.Fprintln(out, "  none")
	}
	for _, m := range mails {
		r, err := readReply(m.Data)
		if err != nil {
			return fmt.Errorf("read the reply mail: %w", err)
		}
		fmt.Fprintf(out, "  From: %s\n  To: %s\n  Subject: %s\n  In-Reply-To: %s\n  attached: %s\n",
			r.from, r.to, decodeWords(r.subject), r.inReplyTo, r.attachment)
		if err := printResult(out, "", r.body); err != nil {
			return err
		}
	}

	section(out, "The brands' actions and balances now")
	balances, err := w.ledger.Balances(ctx)
	if err != nil {
		return err
	}
	for _, b := range balances {
		states := map[string]int{}
		err := w.ledger.ExportActions(ctx, b.Brand, func(a ledger.Action) error {
			states[a.State]++
			return nil
		})
		if err != nil {
			return err
		}
		var parts []string
		for _, s := range []string{"PENDING", "APPROVED", "LOCKED", "PAID", "REVERSED"} {
			if states[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", states[s], s))
			}
		}
		fmt.Fprintf(out, "  %-7s balance %s %s", b.Brand, b.Balance, b.Currency)
		switch {
		case b.DelayedCount == 1:
			fmt.Fprintf(out, " (a payout of %s waits for funds)", b.DelayedAmount)
		case b.DelayedCount > 1:
			fmt.Fprintf(out, " (%d payouts, %s, wait for funds)", b.DelayedCount, b.DelayedAmount)
		}
		fmt.Fprintf(out, "\n          actions: %s\n", strings.Join(parts, ", "))
	}
	return nil
}

// byCode lists a file's rejected and duplicate rows by code.
func byCode(s ledger.Summary) string {
	codes := make([]string, 0, len(s.ByCode))
	for c, n := range s.ByCode {
		codes = append(codes, fmt.Sprintf("%s %d", c, n))
	}
	slices.Sort(codes)
	return strings.Join(codes, ", ")
}

// wrap prints text indented, in lines of at most about 100 columns.
func wrap(out io.Writer, text string) {
	const indent, width = "      ", 100
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			fmt.Fprintln(out, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	if len(line) > len(indent) {
		fmt.Fprintln(out, line)
	}
}

// answers are the result and receipt files written for s.
func (w *watcher) answers(s sentFile) []string {
	stem := strings.TrimSuffix(s.name, filepath.Ext(s.name))
	var out []string
	for _, prefix := range []string{"result_", "receipt_"} {
		found, _ := filepath.Glob(filepath.Join(w.srv.results[s.source], globEscape(prefix+stem)+"*"))
		out = append(out, found...)
	}
	return out
}

// movedTo is where the source's copy of s went.
func (w *watcher) movedTo(s sentFile) string {
	for _, folder := range []string{"processed", "failed"} {
		found, _ := filepath.Glob(filepath.Join(filepath.Dir(s.at), folder, globEscape(s.name)+"*"))
		if len(found) > 0 {
			return found[0]
		}
	}
	return "(gone)"
}

func (w *watcher) mailbox() string {
	for _, m := range []string{"Processed", "Quarantine"} {
		if msgs, err := w.srv.imap.Messages(m); err == nil && len(msgs) > 0 {
			return m
		}
	}
	return "(gone)"
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// resultColumns are the columns of a result file worth a glance, by the
// names they have in the files the demo sends.
var resultColumns = []string{"Line", "ActionId", "Oid", "Id", "Reason", "Resolution Status", "Amount",
	"Outcome", "ErrorCode", "OldAmount", "NewAmount", "NewPayout"}

// printResult prints a result file (path, or data) as a table of its main columns.
func printResult(out io.Writer, path string, data []byte) error {
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return err
		}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if !utf8.Valid(data) { // a result in the brand's windows-1252
		data = windows1252(data)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.Comma = sniffComma(data)
	records, err := r.ReadAll()
	if err != nil {
		return fmt.Errorf("read result file: %w", err)
	}
	if len(records) == 0 {
		return nil
	}
	var idx []int
	for _, name := range resultColumns {
		if i := slices.Index(records[0], name); i >= 0 && !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	for _, rec := range records {
		cells := []string{" "}
		for _, i := range idx {
			cell := ""
			if i < len(rec) {
				cell = safetext.Printable(rec[i])
			}
			cells = append(cells, cell)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			fmt.Fprintln(out, strings.TrimRight(line, " \n"))
		}
	}
	return nil
}

// sniffComma is the delimiter of a result file's header line.
func sniffComma(data []byte) rune {
	header, _, _ := bytes.Cut(data, []byte("\n"))
	best, n := ',', 0
	for _, c := range []rune{',', ';', '\t', '|'} {
		if k := bytes.Count(header, []byte(string(c))); k > n {
			best, n = c, k
		}
	}
	return best
}

// windows1252 reads a windows-1252 result file as UTF-8, for the terminal.
func windows1252(data []byte) []byte {
	out, err := charmap.Windows1252.NewDecoder().Bytes(data)
	if err != nil {
		return data
	}
	return out
}

func printLoaded(out io.Writer, loaded []seeded, shift int) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, s := range loaded {
		what := fmt.Sprintf("%d actions", s.sum.Applied)
		if s.kind == processors.Inquiries {
			what = fmt.Sprintf("%d inquiries, %d refused", s.sum.Applied, s.sum.Rejected)
		}
		if codes := byCode(s.sum); codes != "" {
			what += " (" + codes + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s: %s\n", s.brand, s.fixture, s.about, what)
	}
	tw.Flush()
	if shift != 0 {
		fmt.Fprintf(out, "  (their dates moved %+d days: the fixtures are dated as of %s; this way the story\n"+
			"  is the same on any day)\n", shift, fixturesAsOf.Format(time.DateOnly))
	}
}

func printSent(out io.Writer, sent []sentFile) {
	for _, s := range sent {
		if s.mail != nil {
			fmt.Fprintf(out, "  %s: a mail from %s to %s, %q\n", s.name, s.mail.from, acmeRecipient, s.mail.subject)
		} else {
			fmt.Fprintf(out, "  %s: %s\n", s.name, s.at)
		}
		wrap(out, s.about)
	}
}

func printOperations(out io.Writer, addr, dbURL, cfgPath string, srv *servers, password string) {
	section(out, "Operations")
	fmt.Fprintf(out, "  the ops pages: http://%s/ (user %s, password %s): the day's report, each file and\n"+
		"    its rows, downloads, reprocess and retry, inquiries, sources, the job queue\n", addr, demoUser, password)
	for _, p := range []string{"/metrics", "/readyz", "/healthz"} {
		fmt.Fprintf(out, "  http://%s%s\n", addr, p)
	}
	section(out, "Try it")
	fmt.Fprintf(out, "  Put another file into globex's folder or acme's, and watch the daemon's log:\n    %s\n    %s\n",
		srv.dirs[sourceDrop], srv.dirs[sourceSFTP])
	fmt.Fprintf(out, "  Ask the ledger:\n    DATABASE_URL='%s' \\\n      %s --config %s export balances\n", dbURL, self(), cfgPath)
}

// self is how to call this returnsd: its path when it is one.
func self() string {
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "returnsd" {
		return exe
	}
	return "returnsd"
}

// tailLog prints the last n lines of the daemon's log to w.
func tailLog(w io.Writer, path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	fmt.Fprintf(w, "returnsd demo: the last lines of the daemon's log (%s):\n", path)
	for _, l := range lines {
		fmt.Fprintln(w, "  "+safetext.Printable(l))
	}
}
