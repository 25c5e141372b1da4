package processors

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"

	"golang.org/x/text/transform"
)

// maxXMLDepth bounds how deeply a workbook part's elements may nest. A sheet nests
// six deep, extensions a few more; the bound keeps the stack of open elements
// small whatever the part holds.
const maxXMLDepth = 64

// xmlReader reads one XML part token by token and refuses what is not a whole,
// well-formed document: an element closed by another's end tag, a document that
// ends while elements are open (a cut-off part), content after the root element.
// encoding/xml's RawToken checks none of this and Token is several times slower;
// the check here is what keeps a damaged sheet from reading as a shorter one.
//
// Elements are matched by local name only, so the namespaces of Strict OOXML
// (purl.oclc.org) read like those of Transitional.
type xmlReader struct {
	d        *xml.Decoder
	open     []xml.Name // the elements open around the current token, outermost first
	rootSeen bool
}

func newXMLReader(r io.Reader) *xmlReader {
	d := xml.NewDecoder(r)
	d.CharsetReader = xmlCharsetReader
	return &xmlReader{d: d}
}

// xmlCharsetReader decodes a part that declares an encoding other than UTF-8, as
// a few old generators write them.
func xmlCharsetReader(label string, input io.Reader) (io.Reader, error) {
	enc, err := lookupEncoding(label)
	if err != nil {
		return nil, err
	}
	return transform.NewReader(input, enc.NewDecoder()), nil
}

// next returns the next token, io.EOF after the end of the document, or the
// error that makes the part unreadable. CharData is valid until the next call.
func (x *xmlReader) next() (xml.Token, error) {
	for {
		tok, err := x.d.RawToken()
		if err == io.EOF {
			switch {
			case len(x.open) > 0:
				return nil, x.syntaxError("unexpected EOF")
			case !x.rootSeen:
				return nil, x.syntaxError("no root element")
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if x.rootSeen && len(x.open) == 0 {
				return nil, x.syntaxError(fmt.Sprintf("element <%s> after the end of the document", t.Name.Local))
			}
			if len(x.open) == maxXMLDepth {
				return nil, x.syntaxError(fmt.Sprintf("elements nested more than %d deep", maxXMLDepth))
			}
			x.rootSeen = true
			x.open = append(x.open, t.Name)
		case xml.EndElement:
			if len(x.open) == 0 {
				return nil, x.syntaxError(fmt.Sprintf("unexpected end element </%s>", t.Name.Local))
			}
			if top := x.open[len(x.open)-1]; top != t.Name {
				return nil, x.syntaxError(fmt.Sprintf("element <%s> closed by </%s>", qualified(top), qualified(t.Name)))
			}
			x.open = x.open[:len(x.open)-1]
		case xml.CharData:
			if len(x.open) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, x.syntaxError("text outside the root element")
				}
				continue
			}
		case xml.Comment, xml.ProcInst, xml.Directive:
			continue
		}
		return tok, nil
	}
}

// depth is how many elements are open: 1 inside the root element.
func (x *xmlReader) depth() int { return len(x.open) }

// skip reads past the end of the element whose start was returned last.
func (x *xmlReader) skip() error {
	for d := x.depth(); x.depth() >= d; {
		if _, err := x.next(); err != nil {
			return err
		}
	}
	return nil
}

// text reads the character data of the element whose start was returned last,
// up to its end; it refuses child elements. At most limit bytes are kept; more
// sets tooLong.
func (x *xmlReader) text(buf []byte, limit int) (text []byte, tooLong bool, err error) {
	d := x.depth()
	for {
		tok, err := x.next()
		if err != nil {
			return buf, tooLong, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(buf)+len(t) > limit {
				tooLong = true
				t = t[:max(0, limit-len(buf))]
			}
			buf = append(buf, t...)
		case xml.StartElement:
			return buf, tooLong, x.syntaxError(fmt.Sprintf("element <%s> inside <%s>", t.Name.Local, x.open[d-1].Local))
		case xml.EndElement:
			if x.depth() < d {
				return buf, tooLong, nil
			}
		}
	}
}

func (x *xmlReader) syntaxError(msg string) error {
	line, _ := x.d.InputPos()
	return &xml.SyntaxError{Msg: msg, Line: line}
}

func qualified(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// attr returns the value of the attribute with the given local name and no
// prefix (the unqualified attributes of SpreadsheetML: r, t, s).
func attr(e xml.StartElement, local string) (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}
