package processors

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/returnsd/returnsd/outcome"
)

// Validate reports a Format that no file could be read with: an unknown encoding
// name or a delimiter other than , ; tab or |. Config validation calls it so that a
// typo is caught at start-up rather than by quarantining every file.
func (f Format) Validate() error {
	if _, err := f.delimiter(); err != nil {
		return err
	}
	if f.Encoding != "" {
		if _, err := lookupEncoding(f.Encoding); err != nil {
			return err
		}
	}
	return nil
}

// delimiter returns the configured delimiter, or 0 to detect it. "tab" and a
// literal backslash-t are accepted because YAML makes a real tab awkward to write.
func (f Format) delimiter() (byte, error) {
	switch f.Delimiter {
	case "":
		return 0, nil
	case ",", ";", "|", "\t":
		return f.Delimiter[0], nil
	case "tab", `\t`, "TAB":
		return '\t', nil
	}
	return 0, fmt.Errorf("file_format.delimiter %q: want one of , ; | or tab", f.Delimiter)
}

// lookupEncoding finds an encoding by its WHATWG label (what browsers accept, e.g.
// "latin1", "windows-1252", "shift_jis") or its IANA name.
func lookupEncoding(name string) (encoding.Encoding, error) {
	name = strings.TrimSpace(name)
	if e, err := htmlindex.Get(name); err == nil {
		return e, nil
	}
	if e, err := ianaindex.IANA.Encoding(name); err == nil && e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("file_format.encoding %q is not a known encoding (e.g. utf-8, windows-1252, iso-8859-15)", name)
}

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// decodeText turns the bytes of a text file into UTF-8. A byte-order mark wins
// over the configured encoding: it is what Excel writes, and it cannot be wrong by
// accident. checkUTF8 reports that the text passes through untranscoded, so the
// CSV reader must check it is valid UTF-8 (transcoders cannot produce invalid UTF-8).
// d says what the text was written in, for its result file.
func decodeText(br *bufio.Reader, encName string) (text io.Reader, checkUTF8 bool, d Dialect, err error) {
	head, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return nil, false, d, err
	}
	switch {
	case bytes.HasPrefix(head, bomUTF8):
		_, _ = br.Discard(len(bomUTF8))
		return br, true, Dialect{BOM: true}, nil
	case bytes.HasPrefix(head, bomUTF16LE):
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder()), false, Dialect{UTF16: true}, nil
	case bytes.HasPrefix(head, bomUTF16BE):
		return transform.NewReader(br, unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder()), false, Dialect{UTF16: true}, nil
	}
	if encName == "" {
		return br, true, d, nil
	}
	enc, err := lookupEncoding(encName)
	if err != nil {
		return nil, false, d, &FileError{Code: outcome.Undecodable, Reason: err.Error()}
	}
	if isUTF8(enc) {
		return br, true, d, nil
	}
	return transform.NewReader(br, enc.NewDecoder()), false, Dialect{Encoding: encName}, nil
}

func isUTF8(e encoding.Encoding) bool { return e == unicode.UTF8 || e == encoding.Nop }
