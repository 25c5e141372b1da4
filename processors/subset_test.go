package processors

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// subsetOf writes the records of data at the given lines as a subset and
// returns its bytes and the format it was written in.
func subsetOf(t *testing.T, data []byte, name string, f Format, lines ...int) ([]byte, ResultFormat) {
	t.Helper()
	tb, err := openBytes(t, data, name, f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rf := tb.Dialect().SubsetFormat(f)
	var out bytes.Buffer
	w, err := NewSubsetWriter(&out, tb.Header(), rf)
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := readAll(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if slices.Contains(lines, r.Line) {
			if err := w.Write(Record{Line: r.Line, Fields: r.Fields}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), rf
}

func TestASubsetReadsBackAsItsRecordsAtTheirLines(t *testing.T) {
	t.Parallel()
	latin1, _ := charmap.Windows1252.NewEncoder().String("Oid;Reason;Note\nA-1;RETURNED;Größe\n\nA-2;RETURNED;\"zwei\nZeilen; mit ;\"\"Quote\"\"\"\nA-3;RETURNED;  Leerzeichen \n")
	utf16, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String("ActionId\tReason\n1\tRETURNED\n2\tFRAUD\n3\tRETURNED\n")
	for _, tc := range []struct {
		name    string
		file    string
		data    []byte
		format  Format
		lines   []int
		wantBOM bool
		wantEnc string
		comma   byte
	}{
		{name: "PlainUTF8", file: "r.csv", data: []byte("ActionId,Reason,Note\n1,RETURNED,a\n2,RETURNED,b\n3,RETURNED,\"c,d\"\n"),
			lines: []int{2, 4}, comma: ','},
		{name: "ALegacyEncodingWithSemicolonsBlankLinesAndLineBreaksInCells", file: "r.csv", data: []byte(latin1),
			format: Format{Encoding: "windows-1252"}, lines: []int{4, 5}, wantEnc: "windows-1252", comma: ';'},
		{name: "UTF16ComesBackAsUTF8WithABOM", file: "r.txt", data: []byte(utf16), lines: []int{3}, wantBOM: true, comma: '\t'},
		{name: "AWorkbookComesBackAsCSVWithABOM", file: "r.xlsx", data: xlsxPackage(t, sheetXML(headerRow("ActionId", "Reason"),
			xrow(2, num("A2", "1"), text("B2", "RETURNED")), xrow(5, num("A5", "2"), text("B5", "=not a formula")))),
			lines: []int{5}, wantBOM: true, comma: ','},
		{name: "TheBrandsDelimiterWins", file: "r.xlsx", data: xlsxPackage(t, sheetXML(headerRow("ActionId", "Reason"),
			xrow(2, num("A2", "1"), text("B2", "RETURNED")))), format: Format{Delimiter: ";"}, lines: []int{2}, wantBOM: true, comma: ';'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb, err := openBytes(t, tc.data, tc.file, tc.format, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			header, all, err := readAll(t, tb)
			if err != nil {
				t.Fatal(err)
			}
			subset, rf := subsetOf(t, tc.data, tc.file, tc.format, tc.lines...)
			if rf.BOM != tc.wantBOM || rf.Encoding != tc.wantEnc || rf.Comma != tc.comma {
				t.Errorf("format %+v; want BOM %v, encoding %q, comma %q", rf, tc.wantBOM, tc.wantEnc, tc.comma)
			}
			if got := bytes.HasPrefix(subset, bomUTF8); got != tc.wantBOM {
				t.Errorf("BOM %v; want %v", got, tc.wantBOM)
			}
			back, err := openBytes(t, subset, "retry.csv", tc.format, Limits{})
			if err != nil {
				t.Fatalf("the subset does not open: %v\n%q", err, subset)
			}
			gotHeader, got, err := readAll(t, back)
			if err != nil {
				t.Fatal(err)
			}
			var want []csvRow
			for _, r := range all {
				if slices.Contains(tc.lines, r.Line) {
					want = append(want, r)
				}
			}
			if !slices.Equal(gotHeader, header) {
				t.Errorf("header %q; want %q", gotHeader, header)
			}
			if len(got) != len(want) {
				t.Fatalf("read back %+v; want %+v", got, want)
			}
			for i := range want {
				if got[i].Line != want[i].Line || !slices.Equal(got[i].Fields, want[i].Fields) {
					t.Errorf("record %d: %+v; want %+v", i, got[i], want[i])
				}
			}
			if back.Dialect().ResultFormat(tc.format) != tb.Dialect().ResultFormat(tc.format) {
				t.Errorf("its result would be written as %+v, the original's as %+v",
					back.Dialect().ResultFormat(tc.format), tb.Dialect().ResultFormat(tc.format))
			}
		})
	}
}

func TestASubsetRefusesLinesOutOfOrder(t *testing.T) {
	t.Parallel()
	w, err := NewSubsetWriter(&bytes.Buffer{}, []string{"ActionId"}, ResultFormat{Comma: ','})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(Record{Line: 3, Fields: []string{"1"}}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []int{3, 2, 1} {
		if err := w.Write(Record{Line: line, Fields: []string{"2"}}); err == nil || !strings.Contains(err.Error(), "after line 3") {
			t.Errorf("line %d after 3: %v", line, err)
		}
	}
}

// FuzzSubset: any file's records, written as a subset, read back as the same
// records at the same lines. It reads the subset in the delimiter it was
// written in: a header made of quotes and delimiters can make detection pick
// another (the pipeline reads a retry back before it keeps it).
func FuzzSubset(f *testing.F) {
	f.Add([]byte("ActionId,Reason\n1,RETURNED\n\n2,\"a\nb\"\n"), uint8(0))
	f.Add([]byte("a;b\n\" x \";\"\"\"q\"\n;\n3;\r\n"), uint8(1))
	f.Add([]byte("\xef\xbb\xbfa\tb\n1\t\"2\r\n3\"\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, every uint8) {
		tb, err := Open(bytes.NewReader(data), int64(len(data)), "f.csv", Format{}, Limits{})
		if err != nil {
			return
		}
		defer tb.Close()
		if isBlankRecord(tb.Header()) {
			return // a header of nothing but white space: no kind, never applied
		}
		var want []Record
		var out bytes.Buffer
		rf := tb.Dialect().SubsetFormat(Format{})
		w, err := NewSubsetWriter(&out, tb.Header(), rf)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			rec, err := tb.Next()
			if err != nil {
				if err.Error() == "EOF" {
					break
				}
				return // a file that does not read whole is never retried
			}
			if rec.Problem != nil || (every > 0 && i%int(every+1) != 0) {
				continue
			}
			rec.Fields = slices.Clone(rec.Fields)
			want = append(want, rec)
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		back, err := Open(bytes.NewReader(out.Bytes()), int64(out.Len()), "retry.csv", Format{Delimiter: string(rf.Comma)}, Limits{})
		if err != nil {
			t.Fatalf("the subset does not open: %v\n%q\nfrom %q", err, out.Bytes(), data)
		}
		defer back.Close()
		if !slices.Equal(back.Header(), tb.Header()) {
			t.Fatalf("header %q; want %q", back.Header(), tb.Header())
		}
		for _, wr := range want {
			got, err := back.Next()
			if err != nil || got.Line != wr.Line || !slices.Equal(got.Fields, wr.Fields) || got.Problem != nil {
				t.Fatalf("read back %+v (%v); want %+v\nsubset %q\nfrom %q", got, err, wr, out.Bytes(), data)
			}
		}
		if got, err := back.Next(); err == nil {
			t.Fatalf("an extra record %+v", got)
		}
	})
}
