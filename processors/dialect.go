package processors

// Dialect is how a brand's file was written, as far as reading it told: the
// result file the brand gets back is written the same way (SPEC §4), so that
// it opens in Excel as the brand's own file did.
type Dialect struct {
	Comma    byte   // the delimiter the text was read with; 0 for a workbook
	Encoding string // the legacy encoding it was read in ("windows-1252"); "" for UTF-8 or UTF-16
	BOM      bool   // UTF-8 with a byte-order mark
	UTF16    bool   // UTF-16 (with its byte-order mark)
	Workbook bool   // an .xlsx
}

// ResultFormat is how a result file is written.
type ResultFormat struct {
	Comma    byte   // , ; tab or |
	Encoding string // a legacy encoding name, or "" for UTF-8
	BOM      bool   // a UTF-8 byte-order mark first (Excel reads UTF-8 by it)
	// DecimalComma writes amounts with a decimal comma (12,50), as the brand's
	// file_format reads them.
	DecimalComma bool
}

// ResultFormat is how the result of a file read in d under the brand's format
// f is written: the delimiter and encoding f names, else the file's own; UTF-8
// with a byte-order mark for a file that came as UTF-16 or as a workbook (or
// with one); amounts as f reads them.
func (d Dialect) ResultFormat(f Format) ResultFormat {
	rf := ResultFormat{Comma: d.Comma, Encoding: d.Encoding, BOM: d.BOM || d.UTF16 || d.Workbook,
		DecimalComma: f.DecimalComma}
	if c, err := f.delimiter(); err == nil && c != 0 {
		rf.Comma = c
	}
	if rf.Comma == 0 {
		rf.Comma = ','
	}
	if f.Encoding != "" && !d.BOM && !d.UTF16 {
		if e, err := lookupEncoding(f.Encoding); err == nil && !isUTF8(e) {
			rf.Encoding, rf.BOM = f.Encoding, false
		}
	}
	return rf
}
