package processors

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/returnsd/returnsd/outcome"
)

type csvRow struct {
	Line   int
	Fields []string
}

// readAllCSV reads every record of text, blank ones included; none may have a problem.
func readAllCSV(t testing.TB, text io.Reader, comma byte, l Limits) ([]csvRow, error) {
	t.Helper()
	recs, err := readRecords(t, text, comma, l)
	var rows []csvRow
	for _, rec := range recs {
		if rec.Problem != nil {
			t.Errorf("line %d: unexpected problem %v", rec.Line, rec.Problem)
		}
		rows = append(rows, csvRow{rec.Line, rec.Fields})
	}
	return rows, err
}

// readRecords reads every record of text, each with its own copy of its fields.
func readRecords(t testing.TB, text io.Reader, comma byte, l Limits) ([]Record, error) {
	t.Helper()
	r, err := newCSVReader(text, comma, l.WithDefaults(), true)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for {
		rec, err := r.next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		rec.Fields = append([]string(nil), rec.Fields...)
		recs = append(recs, rec)
	}
}

func TestCSVReader(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		comma byte
		want  []csvRow
	}{
		{"SplitsFieldsAtCommas", "a,b,c\n1,2,3\n", 0,
			[]csvRow{{1, []string{"a", "b", "c"}}, {2, []string{"1", "2", "3"}}}},
		{"AcceptsCRLFLineEnds", "a,b\r\n1,2\r\n", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"AcceptsOldMacCRLineEnds", "a,b\r1,2\r", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"ReadsALastLineWithoutNewline", "a,b\n1,2", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"UnescapesDoubledQuotes", "a\n\"say \"\"hi\"\"\"\n", 0,
			[]csvRow{{1, []string{"a"}}, {2, []string{`say "hi"`}}}},
		{"KeepsDelimitersAndNewlinesInsideQuotes", "a,b\n\"x,y\",\"1\n2\r\n3\"\n4,5\n", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"x,y", "1\n2\r\n3"}}, {3, []string{"4", "5"}}}},
		{"CountsAMultiLineRecordAsOneRow", "h\n\"1\n\n\n\"\nnext\n", 0,
			[]csvRow{{1, []string{"h"}}, {2, []string{"1\n\n\n"}}, {3, []string{"next"}}}},
		{"CountsBlankLinesAsRowsWithoutReturningThem", "\r\nh\n\n\r\n\rx\n\n", 0,
			[]csvRow{{2, []string{"h"}}, {6, []string{"x"}}}},
		{"KeepsAStrayQuoteInsideAnUnquotedField", "h\nab\"c,d\n", 0,
			[]csvRow{{1, []string{"h"}}, {2, []string{`ab"c`, "d"}}}},
		{"AppendsTextAfterAClosingQuote", "h\n\"ab\"cd,e\n", 0,
			[]csvRow{{1, []string{"h"}}, {2, []string{"abcd", "e"}}}},
		{"ReadsAnEmptyLastField", "a,\n", 0,
			[]csvRow{{1, []string{"a", ""}}}},
		{"ReadsAnEmptyLastFieldAtTheEnd", "a,", 0,
			[]csvRow{{1, []string{"a", ""}}}},
		{"ReadsAQuotedEmptyField", "a,\"\",b\n", 0,
			[]csvRow{{1, []string{"a", "", "b"}}}},
		{"DetectsSemicolons", "a;b;c\n1,5;2;3\n", 0,
			[]csvRow{{1, []string{"a", "b", "c"}}, {2, []string{"1,5", "2", "3"}}}},
		{"DetectsTabs", "a\tb\n1\t2\n", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"DetectsPipes", "a|b\n1|2\n", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"IgnoresDelimitersInQuotedHeaderCells", "\"a,b,c\";d\n1;2\n", 0,
			[]csvRow{{1, []string{"a,b,c", "d"}}, {2, []string{"1", "2"}}}},
		{"UsesTheConfiguredDelimiter", "a;b,c\n", ',',
			[]csvRow{{1, []string{"a;b", "c"}}}},
		{"FollowsExcelsSepHintWithoutCountingIt", "sep=|\r\na|b\r\n1|2\r\n", 0,
			[]csvRow{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"FallsBackToCommaWithoutAnyDelimiter", "single\nvalue\n", 0,
			[]csvRow{{1, []string{"single"}}, {2, []string{"value"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time too, so every buffer boundary is crossed.
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got, err := readAllCSV(t, r, tt.comma, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
			}
		})
	}
}

func TestCSVReaderQuoteNeverClosed(t *testing.T) {
	type rec struct {
		Line     int
		Fields   []string
		Unclosed bool
	}
	tests := []struct {
		name string
		in   string
		l    Limits
		want []rec
	}{
		{"RejectsTheLineWhereItOpenedAndReadsTheLinesAfterItOnTheirOwn",
			"ActionId,Amount,Reason\n5001,\"0,ITEM_RETURNED\n5002,10.00,ITEM_RETURNED\n5003,,ITEM_RETURNED\n", Limits{},
			[]rec{{1, []string{"ActionId", "Amount", "Reason"}, false},
				{2, []string{"5001", "0,ITEM_RETURNED"}, true},
				{3, []string{"5002", "10.00", "ITEM_RETURNED"}, false},
				{4, []string{"5003", "", "ITEM_RETURNED"}, false}}},
		{"HandlesCRLFLineEnds",
			"h,i\r\n1,\"x\r\n2,y\r\n\r\n3,z\r\n", Limits{},
			[]rec{{1, []string{"h", "i"}, false}, {2, []string{"1", "x"}, true},
				{3, []string{"2", "y"}, false}, {5, []string{"3", "z"}, false}}},
		{"KeepsAMultiLineValueBeforeIt",
			"h,i\n\"a\nb\",1\n2,\"c\n3,d\n", Limits{},
			[]rec{{1, []string{"h", "i"}, false}, {2, []string{"a\nb", "1"}, false},
				{3, []string{"2", "c"}, true}, {4, []string{"3", "d"}, false}}},
		{"RejectsAQuoteOpenOnTheLastLine", "h\n\"abc", Limits{},
			[]rec{{1, []string{"h"}, false}, {2, []string{"abc"}, true}}},
		{"ReadsAgainTheLinesAQuoteSwallowsPastTheFieldLimit",
			"h,i\n1,\"x\n" + strings.Repeat("2,y\n", 40) + "3,\"z\"\n", Limits{MaxFieldBytes: 64},
			append(append([]rec{{1, []string{"h", "i"}, false}, {2, []string{"1", "x"}, true}},
				func() (r []rec) {
					for i := 0; i < 40; i++ {
						r = append(r, rec{3 + i, []string{"2", "y"}, false})
					}
					return r
				}()...), rec{43, []string{"3", "z"}, false})},
		{"ReadsAgainSeveralUnclosedQuotes",
			"h\n\"a\nb\n\"c\nd\n", Limits{},
			// The quote of line 4 closes the one of line 2 as far as quoting goes
			// ("a\nb\n" then c appended), so the record ends at line 4's end; a
			// stray quote there is text, as spreadsheets read it.
			[]rec{{1, []string{"h"}, false}, {2, []string{"a\nb\nc"}, false}, {3, []string{"d"}, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				recs, err := readRecords(t, r, 0, tt.l)
				if err != nil {
					t.Fatal(err)
				}
				var got []rec
				for _, r := range recs {
					got = append(got, rec{r.Line, r.Fields, r.Problem != nil})
					if r.Problem != nil && (r.Problem.Code != outcome.MalformedRow || !strings.Contains(r.Problem.Message, "never closed")) {
						t.Errorf("line %d: problem %v, want MALFORMED_ROW saying the quote is never closed", r.Line, r.Problem)
					}
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got  %+v\nwant %+v", got, tt.want)
				}
			}
		})
	}
}

func TestCSVReaderAgreesWithEncodingCSVOnWellFormedInput(t *testing.T) {
	in := "a,b,c\r\n\"1,5\",\"x\"\"y\",z\r\n\"multi\nline\",,\r\n"
	want, err := csv.NewReader(strings.NewReader(in)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllCSV(t, strings.NewReader(in), ',', Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Fields, want[i]) {
			t.Errorf("record %d: got %q, want %q", i, got[i].Fields, want[i])
		}
	}
}

// endless yields one byte forever: a field that never ends.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestCSVReaderLimits(t *testing.T) {
	t.Run("RefusesAFieldOverMaxFieldBytesWhileReadingIt", func(t *testing.T) {
		// The reader is endless: only a check made while reading can stop it.
		_, err := readAllCSV(t, io.MultiReader(strings.NewReader("h\n"), endless('x')), ',', Limits{MaxFieldBytes: 1 << 20})
		wantFileError(t, err, outcome.FieldTooLarge, "line 2")
	})
	t.Run("BlamesAnUnclosedQuoteForAnEndlessQuotedField", func(t *testing.T) {
		_, err := readAllCSV(t, io.MultiReader(strings.NewReader("h\n\""), endless('x')), ',', Limits{MaxFieldBytes: 1000})
		wantFileError(t, err, outcome.FieldTooLarge, "never closed")
	})
	t.Run("RefusesAnEndlessLineOfEmptyFields", func(t *testing.T) {
		_, err := readAllCSV(t, io.MultiReader(strings.NewReader("h\n"), endless(',')), ',', Limits{})
		wantFileError(t, err, outcome.FieldTooLarge, "columns")
	})
	t.Run("RefusesInvalidUTF8NamingTheLineAndTheSetting", func(t *testing.T) {
		_, err := readAllCSV(t, strings.NewReader("h\nok\nM\xfcller\n"), ',', Limits{})
		wantFileError(t, err, outcome.Undecodable, "line 3", "0xFC", "file_format.encoding", "windows-1252")
	})
	t.Run("RefusesNULBytesAsProbablyUTF16", func(t *testing.T) {
		_, err := readAllCSV(t, strings.NewReader("h\x00e\x00a\x00d\x00\n"), ',', Limits{})
		wantFileError(t, err, outcome.Undecodable, "UTF-16")
	})
	t.Run("PassesOnAReadError", func(t *testing.T) {
		boom := errors.New("disk on fire")
		_, err := readAllCSV(t, io.MultiReader(strings.NewReader("h\n1,2"), iotest.ErrReader(boom)), ',', Limits{})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want %v", err, boom)
		}
	})
}

// wantFileError fails unless err is a *FileError with code whose reason has every
// one of parts.
func wantFileError(t testing.TB, err error, code outcome.QuarantineCode, parts ...string) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v, want a *FileError %s", err, code)
	}
	if fe.Code != code {
		t.Fatalf("got %s (%s), want %s", fe.Code, fe.Reason, code)
	}
	for _, p := range parts {
		if !strings.Contains(fe.Reason, p) {
			t.Errorf("reason %q does not mention %q", fe.Reason, p)
		}
	}
}

func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "\"a\"\"b\",c\r\n", "x;y\r\r\n\"\n", "sep=;\na;b", "\"", ",,,\n\n\n", "a\tb|c;d,e\n",
		"h\n\"ab\"cd,e\n", "\"unterminated,\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Limits{MaxFieldBytes: 64}.WithDefaults()
		r, err := newCSVReader(bytes.NewReader(data), 0, l, true)
		if err != nil {
			t.Fatal(err)
		}
		prev := 0
		for {
			rec, err := r.next()
			line, fields := rec.Line, rec.Fields
			if err == io.EOF {
				break
			}
			if err != nil {
				var fe *FileError
				if !errors.As(err, &fe) {
					t.Fatalf("error is not a *FileError: %v", err)
				}
				break
			}
			if line <= prev {
				t.Fatalf("line %d follows line %d", line, prev)
			}
			prev = line
			if len(fields) == 0 {
				t.Fatal("a record without fields")
			}
			for _, f := range fields {
				if len(f) > l.MaxFieldBytes {
					t.Fatalf("field of %d bytes passed a limit of %d", len(f), l.MaxFieldBytes)
				}
			}
		}
		// Well-formed input (what encoding/csv accepts in strict mode, with the
		// reader's delimiter) must read the same.
		// (Excel's "sep=" hint line is ours alone: encoding/csv reads it as data.)
		if r.comma != ',' || bytes.ContainsAny(data, "\r") || bytes.HasPrefix(bytes.ToLower(data), []byte("sep=")) {
			return
		}
		want, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			return
		}
		got, err := readAllCSV(t, bytes.NewReader(data), ',', Limits{MaxFieldBytes: 1 << 20})
		if err != nil {
			return
		}
		var nonBlank [][]string
		for _, g := range got {
			nonBlank = append(nonBlank, g.Fields)
		}
		if len(nonBlank) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(nonBlank, want) {
			t.Fatalf("got %q, encoding/csv reads %q", nonBlank, want)
		}
	})
}

// typicalUpdates is a typical action-update file of n rows: 8 columns, ~75 bytes a row.
func typicalUpdates(n int) []byte {
	var b bytes.Buffer
	b.WriteString("ActionId,Oid,ActionTrackerId,Amount,CurrencyCode,Reason,Note,RequestId\r\n")
	rows := []string{
		"10000%04d,,,,USD,ITEM_RETURNED,Customer returned the item,req-%04d\r\n",
		"20000%04d,,,45.90,USD,ORDER_UPDATE,Partial return,req-%04d\r\n",
		",ORD-2024-%04d,1001,0,USD,ITEM_RETURNED,\"Returned, refunded\",req-%04d\r\n",
		"30000%04d,,,,,APPROVED,,req-%04d\r\n",
	}
	for i := 0; i < n; i++ {
		s := rows[i%len(rows)]
		s = strings.Replace(s, "%04d", itoa4(i), 2)
		b.WriteString(s)
	}
	return b.Bytes()
}

func itoa4(i int) string {
	const digits = "0123456789"
	i %= 10000
	return string([]byte{digits[i/1000], digits[i/100%10], digits[i/10%10], digits[i%10]})
}

func BenchmarkCSVReader(b *testing.B) {
	const rows = 100_000
	data := typicalUpdates(rows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := newCSVReader(bytes.NewReader(data), 0, Limits{}.WithDefaults(), true)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.next(); err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
