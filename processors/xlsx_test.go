package processors

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/returnsd/returnsd/outcome"
)

const spreadsheetML = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"

// xlsxPackage is a minimal workbook around one sheet's XML, as a program that
// writes SpreadsheetML by hand makes it: the package's and the workbook's
// relationships, the workbook, the sheet, and the extra parts given (named
// sharedStrings.xml or styles.xml, they are related to the workbook).
func xlsxPackage(t testing.TB, sheet string, extra ...zipEntry) []byte {
	t.Helper()
	return xlsxPackageWith(t, `<workbookPr/>`, sheet, extra...)
}

func xlsxPackageWith(t testing.TB, workbookPr, sheet string, extra ...zipEntry) []byte {
	t.Helper()
	rels := `<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>`
	for i, e := range extra {
		switch e.name {
		case "xl/sharedStrings.xml":
			rels += fmt.Sprintf(`<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>`, i+2)
		case "xl/styles.xml":
			rels += fmt.Sprintf(`<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="/xl/styles.xml"/>`, i+2)
		}
	}
	parts := []zipEntry{
		{"[Content_Types].xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`)},
		{"_rels/.rels", []byte(`<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`)},
		{"xl/workbook.xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="` + spreadsheetML + `" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">` +
			workbookPr + `<sheets><sheet name="Returns" sheetId="1" r:id="rId1"/></sheets></workbook>`)},
		{"xl/_rels/workbook.xml.rels", []byte(`<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` + rels + `</Relationships>`)},
		{"xl/worksheets/sheet1.xml", []byte(sheet)},
	}
	return zipBytes(t, append(parts, extra...)...)
}

// sheetXML is a worksheet holding the given rows.
func sheetXML(rows ...string) string {
	return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" +
		`<worksheet xmlns="` + spreadsheetML + `"><dimension ref="A1"/><sheetData>` +
		strings.Join(rows, "") + `</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>`
}

// xrow is a <row> of cells.
func xrow(r int, cells ...string) string {
	return fmt.Sprintf(`<row r="%d">%s</row>`, r, strings.Join(cells, ""))
}

// text is a cell holding an inline string; num one holding a number.
func text(ref, s string) string {
	return fmt.Sprintf(`<c r="%s" t="inlineStr"><is><t>%s</t></is></c>`, ref, s)
}

func num(ref, v string) string { return fmt.Sprintf(`<c r="%s"><v>%s</v></c>`, ref, v) }

// headerRow is row 1 with the given headers as inline strings.
func headerRow(headers ...string) string {
	cells := make([]string, len(headers))
	for i, h := range headers {
		cells[i] = text(cellName(i, 1), h)
	}
	return xrow(1, cells...)
}

func TestXLSXCellsWithoutAKnownValue(t *testing.T) {
	t.Run("AnAmountFormulaWithoutItsResultRejectsTheRowInsteadOfReversingTheAction", func(t *testing.T) {
		data := xlsxPackage(t, sheetXML(
			headerRow("ActionId", "Amount", "Reason"),
			xrow(2, num("A2", "5001"), `<c r="B2"><f>100*0.6</f></c>`, text("C2", "ITEM_RETURNED")),
			xrow(3, num("A3", "5002"), text("C3", "ITEM_RETURNED")),
		))
		rows, fields := readUpdatesWithFields(t, data)
		if rows[0].Err == nil || rows[0].Err.Code != outcome.UnknownValue {
			t.Fatalf("line 2 read as %+v, want rejected UNKNOWN_VALUE", rows[0])
		}
		want := "Amount is a formula (=100*0.6) whose value the file does not hold; save the file from a program that calculates formulas, or paste the values"
		if rows[0].Err.Message != want {
			t.Errorf("message %q, want %q", rows[0].Err.Message, want)
		}
		if fields[0][1] != "=100*0.6" {
			t.Errorf("the result file would show the Amount as %q, want the formula as written", fields[0][1])
		}
		if rows[1].Err != nil || rows[1].Operation != Reverse {
			t.Errorf("line 3, truly without an Amount, read as %+v, want a REVERSE", rows[1])
		}
	})
	t.Run("AnErrorValueRejectsTheRowNamingTheError", func(t *testing.T) {
		for _, e := range []string{"#DIV/0!", "#N/A", "#REF!"} {
			data := xlsxPackage(t, sheetXML(
				headerRow("ActionId", "Amount", "Reason"),
				xrow(2, num("A2", "5001"), `<c r="B2" t="e"><f>A1/0</f><v>`+e+`</v></c>`, text("C2", "ORDER_UPDATE")),
			))
			rows, fields := readUpdatesWithFields(t, data)
			if rows[0].Err == nil || rows[0].Err.Code != outcome.UnknownValue ||
				!strings.Contains(rows[0].Err.Message, "Amount holds the spreadsheet error "+e) {
				t.Errorf("%s read as %+v", e, rows[0])
			}
			if fields[0][1] != e {
				t.Errorf("the cell reads %q, want %q", fields[0][1], e)
			}
		}
	})
	t.Run("AStringFormulaWithoutItsResultIsUnknownToo", func(t *testing.T) {
		data := xlsxPackage(t, sheetXML(
			headerRow("ActionId", "Reason"),
			xrow(2, num("A2", "5001"), `<c r="B2" t="str"><f>IF(A2&gt;0,"RETURNED","")</f></c>`),
		))
		rows, _ := readUpdatesWithFields(t, data)
		if rows[0].Err == nil || rows[0].Err.Code != outcome.UnknownValue || !strings.Contains(rows[0].Err.Message, `(=IF(A2>0,"RETURNED",""))`) {
			t.Errorf("read as %+v", rows[0])
		}
	})
	t.Run("AFormulaWithItsResultReadsAsTheResult", func(t *testing.T) {
		data := xlsxPackage(t, sheetXML(
			headerRow("ActionId", "Amount", "Reason"),
			xrow(2, num("A2", "5001"), `<c r="B2"><f>100*0.6</f><v>60.000000000000007</v></c>`, `<c r="C2" t="str"><f>"ORDER_"&amp;"UPDATE"</f><v>ORDER_UPDATE</v></c>`),
		))
		rows, _ := readUpdatesWithFields(t, data)
		if rows[0].Err != nil || rows[0].Amount != 6000 || rows[0].Operation != Modify {
			t.Errorf("read as %+v, want MODIFY to 60.00", rows[0])
		}
	})
	t.Run("AnUnknownCellInAColumnNoRuleReadsIsHarmless", func(t *testing.T) {
		data := xlsxPackage(t, sheetXML(
			headerRow("ActionId", "Amount", "Reason", "Checked"),
			xrow(2, num("A2", "5001"), num("B2", "12.5"), text("C2", "ORDER_UPDATE"), `<c r="D2" t="e"><v>#REF!</v></c>`),
		))
		rows, _ := readUpdatesWithFields(t, data)
		if rows[0].Err != nil || rows[0].Amount != 1250 {
			t.Errorf("read as %+v", rows[0])
		}
	})
	t.Run("EveryReaderKindRejectsIt", func(t *testing.T) {
		unknownAmount := `<c r="%s"><f>SUM(X1:X9)</f></c>`
		tests := []struct {
			name   string
			header []string
			cells  []string
			read   func(*Table) (*RowError, error)
			title  string
		}{
			{"InquiryResolutions", []string{"Id", "Resolution Status", "Final Payout"},
				[]string{text("A2", "Q-1"), text("B2", "VALID"), fmt.Sprintf(unknownAmount, "C2")},
				func(tb *Table) (*RowError, error) {
					r, err := NewInquiryResolutionReader(tb, Format{})
					if err != nil {
						return nil, err
					}
					q, err := r.Next()
					return q.Err, err
				}, "Final Payout"},
			{"ActionsImport", []string{"ActionId", "PartnerId", "ActionTrackerId", "Oid", "EventDate", "Amount", "Currency"},
				[]string{num("A2", "1"), num("B2", "77"), num("C2", "1001"), text("D2", "A-1"), text("E2", "2026-09-01"),
					fmt.Sprintf(unknownAmount, "F2"), text("G2", "USD")},
				func(tb *Table) (*RowError, error) {
					r, err := NewActionRecordReader(tb, Format{})
					if err != nil {
						return nil, err
					}
					a, err := r.Next()
					return a.Err, err
				}, "Amount"},
			{"InquiriesImport", []string{"Id", "PartnerId", "Oid", "Transaction Date", "Type", "Sale Amount"},
				[]string{text("A2", "Q-1"), num("B2", "77"), text("C2", "A-1"), text("D2", "2026-09-01"), text("E2", "UNTRACKED"),
					fmt.Sprintf(unknownAmount, "F2")},
				func(tb *Table) (*RowError, error) {
					r, err := NewInquiryReader(tb, Format{})
					if err != nil {
						return nil, err
					}
					q, err := r.Next()
					return q.Err, err
				}, "Sale Amount"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				data := xlsxPackage(t, sheetXML(headerRow(tt.header...), xrow(2, tt.cells...)))
				tb, err := openBytes(t, data, "a.xlsx", Format{}, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				rowErr, err := tt.read(tb)
				if err != nil {
					t.Fatal(err)
				}
				if rowErr == nil || rowErr.Code != outcome.UnknownValue ||
					!strings.HasPrefix(rowErr.Message, tt.title+" is a formula (=SUM(X1:X9))") {
					t.Errorf("got %+v, want UNKNOWN_VALUE naming %s", rowErr, tt.title)
				}
			})
		}
	})
}

// readUpdatesWithFields reads an action-update workbook: its rows, and the cells
// of each as the result file would show them.
func readUpdatesWithFields(t *testing.T, data []byte) ([]ActionUpdate, [][]string) {
	t.Helper()
	tb, err := openBytes(t, data, "returns.xlsx", Format{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewActionUpdateReader(tb, Format{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []ActionUpdate
	var fields [][]string
	for {
		u, err := r.Next()
		if err == io.EOF {
			return rows, fields
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, u)
		fields = append(fields, append([]string(nil), r.Fields()...))
	}
}

// readXLSX reads the records of a workbook after its header.
func readXLSX(t *testing.T, data []byte) ([]csvRow, error) {
	t.Helper()
	tb, err := openBytes(t, data, "a.xlsx", Format{}, Limits{})
	if err != nil {
		return nil, err
	}
	_, rows, err := readAll(t, tb)
	return rows, err
}

// excelizeBook writes a workbook with excelize, as a brand's spreadsheet saves it.
func excelizeBook(t *testing.T, build func(f *excelize.File, sheet string)) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	build(f, f.GetSheetName(0))
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestXLSXReadsStoredValuesNotDisplayFormats(t *testing.T) {
	t.Run("AnAmountFormattedWithoutDecimalsKeepsThem", func(t *testing.T) {
		data := excelizeBook(t, func(f *excelize.File, sheet string) {
			must(t, f.SetSheetRow(sheet, "A1", &[]any{"ActionId", "Amount", "Reason"}))
			must(t, f.SetSheetRow(sheet, "A2", &[]any{5001, 12.5, "ORDER_UPDATE"}))
			style, err := f.NewStyle(&excelize.Style{NumFmt: 1}) // "0"
			must(t, err)
			must(t, f.SetCellStyle(sheet, "B2", "B2", style))
		})
		rows, _ := readUpdatesWithFields(t, data)
		if rows[0].Err != nil || rows[0].Amount != 1250 {
			t.Errorf("12.5 formatted 0 read as %+v, want 12.50", rows[0])
		}
	})
	t.Run("ACurrencyFormattedAmountIsANumber", func(t *testing.T) {
		data := excelizeBook(t, func(f *excelize.File, sheet string) {
			must(t, f.SetSheetRow(sheet, "A1", &[]any{"ActionId", "Amount", "Reason"}))
			must(t, f.SetSheetRow(sheet, "A2", &[]any{5001, 1234.5, "ORDER_UPDATE"}))
			code := "$#,##0.00"
			style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &code})
			must(t, err)
			must(t, f.SetCellStyle(sheet, "B2", "B2", style))
		})
		rows, _ := readUpdatesWithFields(t, data)
		if rows[0].Err != nil || rows[0].Amount != 123450 {
			t.Errorf("1234.5 formatted $#,##0.00 read as %+v, want 1234.50", rows[0])
		}
	})
	t.Run("NumbersAsPlainDecimalsWithExcelsFifteenDigits", func(t *testing.T) {
		values := map[string]string{
			"60.000000000000007":  "60",
			"0.30000000000000004": "0.3",
			"12.499999999999998":  "12.5",
			"1234.5":              "1234.5",
			"1E+21":               "1000000000000000000000",
			"1.5E-7":              "0.00000015",
			"-0.1":                "-0.1",
			"4611686018427387904": "4611686018427390000", // what Excel keeps of 2^62
			"123456789012345678":  "123456789012346000",
			"0":                   "0",
			"-0":                  "0",
			"007":                 "7",
		}
		var cells []string
		var want []string
		i := 0
		for v, w := range values {
			cells = append(cells, num(cellName(i, 2), v))
			want = append(want, w)
			i++
		}
		rows, err := readXLSX(t, xlsxPackage(t, sheetXML(xrow(1, text("A1", "h")), xrow(2, cells...))))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rows[0].Fields, want) {
			t.Errorf("got %q, want %q", rows[0].Fields, want)
		}
	})
	t.Run("DatesAsISODates", func(t *testing.T) {
		styles := `<styleSheet xmlns="` + spreadsheetML + `"><numFmts count="3">` +
			`<numFmt numFmtId="164" formatCode="yyyy\-mm\-dd\ hh:mm"/><numFmt numFmtId="165" formatCode="&quot;day&quot;\ 0"/>` +
			`<numFmt numFmtId="166" formatCode="[$-409]d\-mmm\-yy;@"/><numFmt numFmtId="167" formatCode="[Red]#,##0.00"/></numFmts>` +
			`<cellStyleXfs count="1"><xf numFmtId="14"/></cellStyleXfs>` +
			`<cellXfs count="6"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/><xf numFmtId="167"/></cellXfs></styleSheet>`
		cell := func(ref, style, v string) string { return fmt.Sprintf(`<c r="%s" s="%s"><v>%s</v></c>`, ref, style, v) }
		sheet := sheetXML(xrow(1, text("A1", "h")), xrow(2,
			cell("A2", "1", "46328"),           // built-in 14
			cell("B2", "2", "46328.427083333"), // yyyy-mm-dd hh:mm
			cell("C2", "3", "46328"),           // "day" 0: quoted text is no date
			cell("D2", "4", "46328"),           // locale in brackets
			cell("E2", "5", "46328"),           // a colour in brackets is no date
			cell("F2", "1", "59"),              // before Excel's 29 February 1900
			cell("G2", "1", "61"),              // after it
			cell("H2", "1", "60"),              // the day that never was
			cell("I2", "0", "46328"),           // no style: a number
			cell("J2", "9", "46328"),           // a style the workbook lacks: a number
			cell("K2", "1", "-1"),              // no date shows a negative serial
		))
		rows, err := readXLSX(t, xlsxPackage(t, sheet, zipEntry{"xl/styles.xml", []byte(styles)}))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"2026-11-02", "2026-11-02T10:15:00", "46328", "2026-11-02", "46328",
			"1900-02-28", "1900-03-01", "1900-02-29", "46328", "46328", "-1"}
		if !reflect.DeepEqual(rows[0].Fields, want) {
			t.Errorf("got %q, want %q", rows[0].Fields, want)
		}
	})
	t.Run("DatesOfThe1904DateSystem", func(t *testing.T) {
		styles := `<styleSheet xmlns="` + spreadsheetML + `"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>`
		sheet := sheetXML(xrow(1, text("A1", "h")), xrow(2, `<c r="A2" s="1"><v>0</v></c>`, `<c r="B2" s="1"><v>44866</v></c>`))
		rows, err := readXLSX(t, xlsxPackageWith(t, `<workbookPr date1904="1"/>`, sheet, zipEntry{"xl/styles.xml", []byte(styles)}))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"1904-01-01", "2026-11-02"}; !reflect.DeepEqual(rows[0].Fields, want) {
			t.Errorf("got %q, want %q", rows[0].Fields, want)
		}
	})
	t.Run("AnExcelizeDateCell", func(t *testing.T) {
		data := excelizeBook(t, func(f *excelize.File, sheet string) {
			must(t, f.SetCellValue(sheet, "A1", "Booked"))
			must(t, f.SetCellValue(sheet, "A2", 46328.0))
			style, err := f.NewStyle(&excelize.Style{NumFmt: 22}) // m/d/yy h:mm
			must(t, err)
			must(t, f.SetCellStyle(sheet, "A2", "A2", style))
		})
		rows, err := readXLSX(t, data)
		if err != nil {
			t.Fatal(err)
		}
		if rows[0].Fields[0] != "2026-11-02" {
			t.Errorf("got %q", rows[0].Fields)
		}
	})
	t.Run("TextBooleansAndTypedCells", func(t *testing.T) {
		sst := `<sst xmlns="` + spreadsheetML + `" count="3" uniqueCount="3">` +
			`<si><t>plain</t></si>` +
			`<si><r><rPr><b/></rPr><t>rich </t></r><r><t xml:space="preserve">text</t></r><rPh sb="0" eb="1"><t>フリガナ</t></rPh><phoneticPr fontId="1"/></si>` +
			`<si><t>line_x000D__x000A_break _x005F_x0041_ _xD83D__xDE00_</t></si></sst>`
		sheet := sheetXML(xrow(1, text("A1", "h")), xrow(2,
			`<c r="A2" t="s"><v>0</v></c>`,
			`<c r="B2" t="s"><v>1</v></c>`,
			`<c r="C2" t="s"><v>2</v></c>`,
			`<c r="D2" t="b"><v>1</v></c>`,
			`<c r="E2" t="b"><v>0</v></c>`,
			`<c r="F2" t="inlineStr"><is><r><t>in</t></r><r><t>line</t></r></is></c>`,
			`<c r="G2" t="str"><f>A2&amp;"!"</f><v>plain!</v></c>`,
			`<c r="H2" t="d"><v>2026-11-02T10:15:00</v></c>`,
			`<c r="I2" t="n"/>`,
			`<c r="J2" t="inlineStr"><is><t>_x0000_</t></is></c>`,
		))
		rows, err := readXLSX(t, xlsxPackage(t, sheet, zipEntry{"xl/sharedStrings.xml", []byte(sst)}))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"plain", "rich text", "line\r\nbreak _x0041_ 😀", "TRUE", "FALSE", "inline", "plain!",
			"2026-11-02T10:15:00", "", "\uFFFD"}
		if !reflect.DeepEqual(rows[0].Fields, want) {
			t.Errorf("got %q, want %q", rows[0].Fields, want)
		}
	})
	t.Run("SkippedRowsAndColumnsKeepTheirPlaces", func(t *testing.T) {
		sheet := sheetXML(
			`<row r="2">`+text("B2", "ActionId")+text("D2", "Reason")+`</row>`,
			`<row r="5">`+num("B5", "1")+text("D5", "OTHER")+`<c r="F5" s="1"/></row>`,
			`<row>`+num("B6", "2")+`<c><v>3</v></c>`+`</row>`, // no r: the next row, the next column
		)
		tb, err := openBytes(t, xlsxPackage(t, sheet), "a.xlsx", Format{}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		header, rows, err := readAll(t, tb)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"", "ActionId", "", "Reason"}; !reflect.DeepEqual(header, want) {
			t.Errorf("header %q, want %q", header, want)
		}
		want := []csvRow{{5, []string{"", "1", "", "OTHER"}}, {6, []string{"", "2", "3"}}}
		if !reflect.DeepEqual(rows, want) {
			t.Errorf("got %+v, want %+v", rows, want)
		}
	})
	t.Run("StrictOOXML", func(t *testing.T) {
		strict := strings.NewReplacer(
			"http://schemas.openxmlformats.org/spreadsheetml/2006/main", "http://purl.oclc.org/ooxml/spreadsheetml/main",
			"http://schemas.openxmlformats.org/officeDocument/2006/relationships", "http://purl.oclc.org/ooxml/officeDocument/relationships",
		)
		var b bytes.Buffer
		w := zip.NewWriter(&b)
		transitional := xlsxPackage(t, sheetXML(headerRow("ActionId", "Reason"), xrow(2, num("A2", "7"), text("B2", "OTHER"))))
		zr, err := zip.NewReader(bytes.NewReader(transitional), int64(len(transitional)))
		must(t, err)
		for _, e := range zr.File {
			rc, err := e.Open()
			must(t, err)
			content, err := io.ReadAll(rc)
			must(t, err)
			s := strict.Replace(string(content))
			if e.Name == "xl/worksheets/sheet1.xml" { // prefixed elements, as Strict writers do
				s = strings.NewReplacer(`<worksheet xmlns=`, `<x:worksheet xmlns:x=`, `</worksheet>`, `</x:worksheet>`,
					`<sheetData>`, `<x:sheetData>`, `</sheetData>`, `</x:sheetData>`, `<row `, `<x:row `, `</row>`, `</x:row>`,
					`<c `, `<x:c `, `</c>`, `</x:c>`, `<v>`, `<x:v>`, `</v>`, `</x:v>`, `<is>`, `<x:is>`, `</is>`, `</x:is>`,
					`<t>`, `<x:t>`, `</t>`, `</x:t>`, `<dimension `, `<x:dimension `, `<pageMargins `, `<x:pageMargins `).Replace(s)
			}
			f, err := w.Create(e.Name)
			must(t, err)
			_, err = f.Write([]byte(s))
			must(t, err)
		}
		must(t, w.Close())
		rows, err := readXLSX(t, b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if want := []csvRow{{2, []string{"7", "OTHER"}}}; !reflect.DeepEqual(rows, want) {
			t.Errorf("got %+v, want %+v", rows, want)
		}
	})
}

// elevenRows is a workbook of a header and ten action updates (rows 2 to 11),
// with its sheet's XML, so a test can damage the one and rebuild the other.
func elevenRows(t testing.TB) (sheet string, build func(sheet string) []byte) {
	rows := []string{headerRow("ActionId", "Amount", "Reason")}
	for r := 2; r <= 11; r++ {
		rows = append(rows, xrow(r, num(cellName(0, r), fmt.Sprint(5000+r)), num(cellName(1, r), fmt.Sprintf("%d.25", r)), text(cellName(2, r), "ORDER_UPDATE")))
	}
	return sheetXML(rows...), func(sheet string) []byte { return xlsxPackage(t, sheet) }
}

func TestADamagedWorkbookIsDamagedNeverAShorterSheet(t *testing.T) {
	sheet, build := elevenRows(t)
	if rows, err := readXLSX(t, build(sheet)); err != nil || len(rows) != 10 {
		t.Fatalf("the undamaged workbook reads %d rows, %v", len(rows), err)
	}
	row7 := strings.Index(sheet, `<row r="7">`)
	tests := []struct {
		name  string
		data  []byte
		parts []string
	}{
		{"ASheetCutInsideRow7", build(sheet[:row7+30]),
			[]string{`sheet "Returns" (xl/worksheets/sheet1.xml) of "a.xlsx" is damaged at row 7`, "unexpected EOF"}},
		{"ASheetCutBetweenRows", build(sheet[:row7]), []string{"after row 6", "unexpected EOF"}},
		{"ASheetCutAfterItsLastRow", build(sheet[:strings.Index(sheet, "<pageMargins")+5]), []string{"after row 11"}},
		{"ABadTagInARow", build(strings.Replace(sheet, `</c></row><row r="4">`, `</x></row><row r="4">`, 1)),
			[]string{"at row 3", "element <c> closed by </x>"}},
		{"BrokenXMLBeforeTheFirstRow", build(strings.Replace(sheet, "<sheetData>", "<sheetData<", 1)),
			[]string{"before its first row"}},
		{"RowsOutOfOrder", build(strings.Replace(sheet, `<row r="7">`, `<row r="5">`, 1)), []string{"row 5 comes after row 6"}},
		{"CellsOutOfOrder", build(strings.Replace(sheet, `<c r="B4">`, `<c r="A4">`, 1)), []string{"at row 4", "cell A4 comes after A4"}},
		{"AnElementThatIsNoRow", build(strings.Replace(sheet, `<row r="7">`, `<rox r="7">`, 1)), []string{"unexpected element <rox>"}},
		{"AMissingSharedString", build(strings.Replace(sheet, `<c r="C5" t="inlineStr"><is><t>ORDER_UPDATE</t></is></c>`, `<c r="C5" t="s"><v>7</v></c>`, 1)),
			[]string{"at row 5", "shared string 7"}},
		{"TheWorkbookCutShort", func() []byte { b := build(sheet); return b[:len(b)*2/3] }(), []string{"damaged or truncated zip"}},
		{"ADamagedSharedStringsPart", xlsxPackage(t, sheet, zipEntry{"xl/sharedStrings.xml", []byte(`<sst xmlns="` + spreadsheetML + `"><si><t>cut`)}),
			[]string{"xl/sharedStrings.xml", "unexpected EOF"}},
		{"AWorkbookWithoutItsSheet", func() []byte {
			var entries []zipEntry
			zr, _ := zip.NewReader(bytes.NewReader(build(sheet)), int64(len(build(sheet))))
			for _, e := range zr.File {
				if e.Name != "xl/worksheets/sheet1.xml" {
					rc, _ := e.Open()
					b, _ := io.ReadAll(rc)
					entries = append(entries, zipEntry{e.Name, b})
				}
			}
			return zipBytes(t, entries...)
		}(), []string{"xl/worksheets/sheet1.xml is missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := readXLSX(t, tt.data)
			wantFileError(t, err, outcome.DamagedFile, tt.parts...)
			t.Logf("%d rows before the damage; reason: %v", len(rows), err)
		})
	}
	t.Run("ACorruptByteInTheCompressedSheet", func(t *testing.T) {
		data := build(sheet)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		must(t, err)
		var damaged int
		for _, e := range zr.File {
			if e.Name != "xl/worksheets/sheet1.xml" {
				continue
			}
			off, err := e.DataOffset()
			must(t, err)
			for i := int64(0); i < int64(e.CompressedSize64); i++ {
				b := bytes.Clone(data)
				b[off+i] ^= 0x55
				_, err := readXLSX(t, b)
				wantFileError(t, err, outcome.DamagedFile)
				damaged++
			}
		}
		if damaged == 0 {
			t.Fatal("the sheet was not found")
		}
	})
}

// FuzzXLSX feeds the workbook reader mutated SpreadsheetML. The fuzzer's bytes are
// the sheet, the shared strings and the styles, packaged in a sound zip: mutated
// zip bytes would fail their checksum before reaching the XML.
func FuzzXLSX(f *testing.F) {
	seeds := [][]byte{workbook(f)}
	for _, name := range []string{"acme_returns_libreoffice.xlsx", "acme_resolutions_libreoffice.xlsx", "acme_actions_libreoffice.xlsx"} {
		data, err := os.ReadFile(filepath.Join("testdata", "brands", name))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	for _, data := range seeds {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			f.Fatal(err)
		}
		part := func(name string) []byte {
			for _, e := range zr.File {
				if e.Name == name {
					rc, err := e.Open()
					if err != nil {
						f.Fatal(err)
					}
					b, err := io.ReadAll(rc)
					if err != nil {
						f.Fatal(err)
					}
					return b
				}
			}
			return nil
		}
		f.Add(part("xl/worksheets/sheet1.xml"), part("xl/sharedStrings.xml"), part("xl/styles.xml"))
	}
	sheet, _ := elevenRows(f)
	f.Add([]byte(sheet), []byte(nil), []byte(nil))
	f.Add([]byte(sheetXML(xrow(1, text("A1", "ActionId"), text("B1", "Amount"), text("C1", "Reason")),
		xrow(3, num("A3", "1"), `<c r="B3"><f>1/0</f></c>`, `<c r="C3" t="e"><v>#N/A</v></c>`))), []byte(nil), []byte(nil))

	f.Fuzz(func(t *testing.T, sheet, sst, styles []byte) {
		var extra []zipEntry
		if sst != nil {
			extra = append(extra, zipEntry{"xl/sharedStrings.xml", sst})
		}
		if styles != nil {
			extra = append(extra, zipEntry{"xl/styles.xml", styles})
		}
		data := xlsxPackage(t, string(sheet), extra...)
		l := Limits{MaxFieldBytes: 1 << 10, MaxRows: 1000, MaxUncompressedBytes: 1 << 20}.WithDefaults()
		tb, err := Open(bytes.NewReader(data), int64(len(data)), "fuzz.xlsx", Format{}, l)
		if err != nil {
			wantOnlyFileErrors(t, err)
			return
		}
		defer tb.Close()
		for _, h := range tb.Header() {
			if !utf8.ValidString(h) {
				t.Fatalf("header %q is not UTF-8", h)
			}
		}
		r, err := NewActionUpdateReader(tb, Format{})
		if err != nil {
			wantOnlyFileErrors(t, err)
			return
		}
		prev := 1
		for {
			u, err := r.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				wantOnlyFileErrors(t, err)
				return
			}
			if u.Line <= prev || u.Line > maxSheetRows {
				t.Fatalf("line %d after line %d", u.Line, prev)
			}
			prev = u.Line
			fields := r.Fields()
			if len(fields) > maxColumns {
				t.Fatalf("%d fields", len(fields))
			}
			for _, c := range fields {
				if len(c) > l.MaxFieldBytes || !utf8.ValidString(c) || strings.ContainsRune(c, 0) {
					t.Fatalf("line %d: field %q passed", u.Line, c)
				}
			}
			if u.Err != nil && (!outcome.IsCode(u.Err.Code) || u.Err.Message == "") {
				t.Fatalf("line %d: bad rejection %+v", u.Line, u.Err)
			}
		}
	})
}

// TestXLSXRecordsUnknownColumnsInOrder checks what the fuzz target cannot see
// through a reader: the columns a record marks unknown are its own, in order,
// and hold what was written rather than a blank.
func TestXLSXRecordsUnknownColumnsInOrder(t *testing.T) {
	data := xlsxPackage(t, sheetXML(headerRow("a", "b", "c", "d"),
		xrow(2, `<c r="B2"><f>X1</f></c>`, `<c r="D2" t="e"><v>#REF!</v></c>`),
		xrow(3, num("A3", "1")),
	))
	tb, err := openBytes(t, data, "a.xlsx", Format{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tb.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.Unknown, []int{1, 3}) || rec.Fields[1] != "=X1" || rec.Fields[3] != "#REF!" {
		t.Errorf("record %+v", rec)
	}
	if rec, err = tb.Next(); err != nil || rec.Unknown != nil {
		t.Errorf("the next record %+v, %v; want no unknown columns", rec, err)
	}
}

func TestXLSXIsReadAsAStreamInBoundedMemory(t *testing.T) {
	const rows = 100_000
	var sheet strings.Builder
	sheet.WriteString(`<worksheet xmlns="` + spreadsheetML + `"><sheetData>` + headerRow("ActionId", "Amount", "Reason", "Note"))
	for r := 2; r <= rows+1; r++ {
		fmt.Fprintf(&sheet, `<row r="%d"><c r="A%d"><v>%d</v></c><c r="B%d"><v>%d.25</v></c><c r="C%d" t="s"><v>0</v></c><c r="D%d" t="s"><v>%d</v></c></row>`,
			r, r, 1_000_000+r, r, r%500, r, r, 1+r%1000)
	}
	sheet.WriteString(`</sheetData></worksheet>`)
	var sst strings.Builder
	sst.WriteString(`<sst xmlns="` + spreadsheetML + `"><si><t>ORDER_UPDATE</t></si>`)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sst, `<si><t>note number %d</t></si>`, i)
	}
	sst.WriteString(`</sst>`)
	data := xlsxPackage(t, sheet.String(), zipEntry{"xl/sharedStrings.xml", []byte(sst.String())})
	t.Logf("a %d-byte workbook whose sheet is %d bytes", len(data), sheet.Len())
	sheetBytes := sheet.Len()
	sheet.Reset()

	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := live()
	tb, err := openBytes(t, data, "big.xlsx", Format{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n, peak := 0, uint64(0)
	for {
		rec, err := tb.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%10_000 == 0 {
			peak = max(peak, live())
			if want := fmt.Sprintf("note number %d", (rec.Line)%1000); rec.Fields[3] != want {
				t.Fatalf("line %d: %q, want %q", rec.Line, rec.Fields, want)
			}
		}
	}
	if n != rows {
		t.Fatalf("read %d rows, want %d", n, rows)
	}
	grown := int64(peak) - int64(base)
	t.Logf("the live heap grew by at most %d KiB", grown>>10)
	if grown > int64(sheetBytes)/4 {
		t.Errorf("the live heap grew by %d KiB while reading a %d KiB sheet: it is not read as a stream", grown>>10, sheetBytes>>10)
	}
}
