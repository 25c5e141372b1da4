package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// brandsDir holds realistic files as brands send them (processors' golden tests
// read them too).
const brandsDir = "../processors/testdata/brands"

// brandFormats are the file_format the brands' configs would declare for the
// files that need one (see processors/golden_test.go).
var brandFormats = map[string]processors.Format{
	"muller_cp1252.csv": {Encoding: "windows-1252", DecimalComma: true, Aliases: map[string]string{
		"Bestellnummer": "Oid", "Betrag": "Amount", "Währung": "CurrencyCode", "Grund": "Reason", "Notiz": "Note"}},
	"initech_sep_hint.csv":          {DecimalComma: true},
	"acme_actions.csv":              {Location: time.FixedZone("EST", -5*3600)},
	"acme_actions_libreoffice.xlsx": {Location: time.FixedZone("EST", -5*3600)},
}

// corpusSample is one file of the corpus: a brand file, or a damaged copy of one.
type corpusSample struct {
	name     string // as received
	data     []byte
	original string // the brand file it was made from
	damage   string // what was done to it; "" for the brand file itself
	// truncated says the damage can be nothing but damage: the file or a part
	// of it ends early. Other damage may hit bytes nothing reads, or make the
	// file claim something else (an encrypted entry, another name).
	truncated bool
}

// damagedCorpus makes damaged copies of the brand files that are containers
// (.zip, .gz, .xlsx), deterministically: the file cut at many offsets, random
// bytes flipped, and for workbooks their sheet and shared strings cut inside
// the XML (in a sound zip, so only the XML reader can tell).
func damagedCorpus(t *testing.T, originals map[string][]byte) []corpusSample {
	rng := rand.New(rand.NewPCG(8, 2026))
	var samples []corpusSample
	names := make([]string, 0, len(originals))
	for name := range originals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data := originals[name]
		ext := strings.ToLower(filepath.Ext(name))
		if ext != ".zip" && ext != ".gz" && ext != ".xlsx" {
			continue
		}
		add := func(damage string, b []byte, truncated bool) {
			samples = append(samples, corpusSample{name: fmt.Sprintf("d%03d-%s", len(samples), name),
				data: b, original: name, damage: damage, truncated: truncated})
		}
		for i := 0; i < 20; i++ {
			cut := 10 + rng.IntN(len(data)-10)
			add(fmt.Sprintf("cut after %d of %d bytes", cut, len(data)), bytes.Clone(data[:cut]), true)
		}
		for i := 0; i < 25; i++ {
			b := bytes.Clone(data)
			var at []string
			for range 1 + rng.IntN(3) {
				off := rng.IntN(len(b))
				b[off] ^= byte(1 + rng.IntN(255))
				at = append(at, fmt.Sprint(off))
			}
			add("bytes flipped at "+strings.Join(at, ", "), b, false)
		}
		if ext != ".xlsx" {
			continue
		}
		for part, cuts := range map[string]int{"xl/worksheets/sheet1.xml": 20, "xl/sharedStrings.xml": 5} {
			for i := 0; i < cuts; i++ {
				var cut, size int
				b := rezip(t, data, func(n string, content []byte) []byte {
					if n != part {
						return content
					}
					// Cut before the closing tag: after it, only the document's
					// final newline would be lost, and that is no damage.
					end := bytes.LastIndexByte(content, '<')
					cut, size = rng.IntN(end), len(content)
					return content[:cut]
				})
				add(fmt.Sprintf("%s cut after %d of %d bytes", part, cut, size), b, true)
			}
		}
	}
	return samples
}

// linesOf reads a file as the pipeline would and returns the line of every
// record: the lines that must each get one outcome.
func linesOf(t *testing.T, data []byte, name string, f processors.Format) []int {
	t.Helper()
	tb, err := processors.Open(bytes.NewReader(data), int64(len(data)), name, f, processors.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer tb.Close()
	var lines []int
	for {
		rec, err := tb.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("%s: %v", name, err)
			}
			return lines
		}
		lines = append(lines, rec.Line)
	}
}

// TestCorpusEveryFileEndsWithAClearOutcome runs every brand file and a few
// hundred damaged copies through the pipeline. Each ends COMPLETED with one
// outcome for every line of its undamaged original, or QUARANTINED with a
// reason: never a silently shorter file, never an error that leaves it RECEIVED.
func TestCorpusEveryFileEndsWithAClearOutcome(t *testing.T) {
	t.Parallel()
	p, b := setup(t)
	ctx := context.Background()

	entries, err := os.ReadDir(brandsDir)
	if err != nil {
		t.Fatal(err)
	}
	originals := map[string][]byte{}
	var samples []corpusSample
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(brandsDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		originals[e.Name()] = data
		samples = append(samples, corpusSample{name: e.Name(), data: data, original: e.Name()})
	}
	samples = append(samples, damagedCorpus(t, originals)...)
	wantLines := map[string][]int{}
	for name, data := range originals {
		wantLines[name] = linesOf(t, data, name, brandFormats[name])
	}

	seen := map[[32]byte]bool{}
	counts := map[string]int{}
	start := time.Now()
	for _, s := range samples {
		sum := sha256.Sum256(s.data)
		if seen[sum] { // two flips that came out the same: the second would be a DUPLICATE_FILE
			continue
		}
		seen[sum] = true
		params := pipeline.Params{Brand: "acme", Format: brandFormats[s.original], Source: "corpus", Actor: "test",
			Path: b.write(t, s.name, s.data), Accept: []processors.Kind{
				processors.ActionUpdates, processors.InquiryResolutions, processors.Actions, processors.Inquiries}}
		res, err := p.Process(ctx, params)
		what := s.name
		if s.damage != "" {
			what = fmt.Sprintf("%s (%s %s)", s.name, s.original, s.damage)
		}
		if err != nil {
			t.Errorf("%s: %v; the file is left %s", what, err, b.fileStatus(t, s.name))
			continue
		}
		if status := b.fileStatus(t, s.name); status != string(res.Status) {
			t.Errorf("%s: ended %s, recorded %s", what, res.Status, status)
		}
		switch res.Status {
		case outcome.Completed:
			counts["COMPLETED"]++
			var got []int
			rows, err := b.db.Query(ctx, "SELECT line FROM row_outcomes WHERE file_id = $1 ORDER BY line", res.FileID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var line int
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				got = append(got, line)
			}
			rows.Close()
			if !slices.Equal(got, wantLines[s.original]) {
				t.Errorf("%s: COMPLETED with outcomes for lines %v, want one for each of %v", what, got, wantLines[s.original])
			}
		case outcome.Quarantined:
			counts["QUARANTINED "+string(res.Code)]++
			switch {
			case s.damage == "":
				t.Errorf("%s, a brand file as brands send it, was quarantined: %s %s", what, res.Code, res.Reason)
			case !slices.Contains(outcome.QuarantineCodes, res.Code) || res.Reason == "":
				t.Errorf("%s: quarantined %q with reason %q", what, res.Code, res.Reason)
			case s.truncated && res.Code != outcome.DamagedFile:
				t.Errorf("%s: quarantined %s (%s), want DAMAGED_FILE", what, res.Code, res.Reason)
			case res.Code == outcome.DamagedFile && !strings.Contains(res.Reason, "damaged") && !strings.Contains(res.Reason, "truncated"):
				t.Errorf("%s: the reason %q does not name the damage", what, res.Reason)
			}
			if testing.Verbose() {
				t.Logf("%s: %s %s", what, res.Code, res.Reason)
			}
		default:
			t.Errorf("%s: ended %s", what, res.Status)
		}
	}
	var summary []string
	for k, n := range counts {
		summary = append(summary, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(summary)
	t.Logf("%d files (%d brand files) in %v; %s", len(seen), len(originals), time.Since(start).Round(time.Millisecond),
		strings.Join(summary, ", "))
}

// fileStatus is the status of the received file last recorded under name.
func (b *testBundle) fileStatus(t *testing.T, name string) string {
	t.Helper()
	var status string
	err := b.db.QueryRow(context.Background(),
		"SELECT status FROM received_files WHERE name = $1 ORDER BY id DESC LIMIT 1", name).Scan(&status)
	if err != nil {
		return "unrecorded (" + err.Error() + ")"
	}
	return status
}
