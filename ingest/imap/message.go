package imap

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset" // every charset RFC 2047 words and RFC 2231 values are written in
	"github.com/emersion/go-message/textproto"
)

// Bounds on a message's structure: a message past them is refused as
// undecodable rather than walked without end.
const (
	maxHeaderBytes = 1 << 20
	maxDepth       = 32
	maxParts       = 1000
)

// errMalformed marks a message whose MIME structure cannot be read (as opposed
// to a connection that failed while it was read).
var errMalformed = errors.New("malformed MIME message")

// errStop ends a walk early: the part wanted was found.
var errStop = errors.New("stop")

// walkedPart is a leaf of a message that is a file, or that looks like one
// but is not data (see parts.go).
type walkedPart struct {
	id   string // as IMAP numbers it: "1", "2.1", "3.1.2"
	name string // the decoded file name; "" for an unnamed part that is not data
	// notData, when set, says what the part is instead of data ("inline image").
	notData string
}

// partVisitor is called for each walked part, with its decoded body when it
// is data (nil otherwise). The body need not be read to the end.
type partVisitor func(p walkedPart, body io.Reader) error

// walkMessage reads a whole message from r and calls visit for each file in
// it and each part that looks like one but is not data (parts.go), in
// multiparts at any depth and inside attached messages (message/rfc822). The
// message's text is not visited. It returns the message's header.
//
// A structure that cannot be read is an error wrapping errMalformed; an error
// of r, or of visit, is returned as it is.
func walkMessage(r io.Reader, visit partVisitor) (textproto.Header, error) {
	h, body, err := readHeader(r)
	if err != nil {
		return h, err
	}
	w := &walker{visit: visit}
	return h, w.message(h, body, "", 0)
}

type walker struct {
	visit partVisitor
	parts int
}

// message walks an encapsulated message (or the top-level one) at id: the
// parts of a multipart body are id.1, id.2 ...; a single-part body is id.1.
func (w *walker) message(h textproto.Header, body io.Reader, id string, depth int) error {
	if mediaType, params := contentType(h); strings.HasPrefix(mediaType, "multipart/") {
		return w.multipart(mediaType, params, body, id, depth)
	}
	return w.entity(h, body, join(id, 1), depth)
}

// entity walks the part at id.
func (w *walker) entity(h textproto.Header, body io.Reader, id string, depth int) error {
	w.parts++
	if depth > maxDepth || w.parts > maxParts {
		return fmt.Errorf("%w: more than %d levels or %d parts", errMalformed, maxDepth, maxParts)
	}
	mediaType, params := contentType(h)
	switch {
	case strings.HasPrefix(mediaType, "multipart/"):
		return w.multipart(mediaType, params, body, id, depth)
	case mediaType == "message/rfc822" || mediaType == "message/global":
		decoded, err := transferDecoder(h, body)
		if err != nil {
			return err
		}
		inner, rest, err := readHeader(decoded)
		if err != nil {
			return err
		}
		return w.message(inner, rest, id, depth+1)
	}
	name := partName(h)
	if name == "" {
		ext := unnamedDataTypes[mediaType]
		switch {
		case ext != "":
			name = "attachment-" + id + ext
		case disposition(h) == "attachment":
			return w.visit(walkedPart{id: id, notData: mediaType}, nil)
		default:
			return nil // the message's text, an unnamed picture in it
		}
	} else if kind := notData(h, mediaType, name); kind != "" {
		return w.visit(walkedPart{id: id, name: name, notData: kind}, nil)
	}
	decoded, err := transferDecoder(h, body)
	if err != nil {
		return err
	}
	return w.visit(walkedPart{id: id, name: name}, decoded)
}

func (w *walker) multipart(mediaType string, params map[string]string, body io.Reader, id string, depth int) error {
	boundary := params["boundary"]
	if boundary == "" {
		return fmt.Errorf("%w: %s without a boundary", errMalformed, mediaType)
	}
	if mediaType == "multipart/encrypted" {
		// Its parts are a version and a ciphertext (RFC 1847): nothing to read.
		return w.visit(walkedPart{id: cmp.Or(id, "1"), notData: kindEncrypted}, nil)
	}
	mr := textproto.NewMultipartReader(body, boundary)
	for i := 1; ; i++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return malformed(err)
		}
		if mediaType == "multipart/signed" && i > 1 {
			// The signature of the first part, whatever it is called.
			w.parts++
			err := w.visit(walkedPart{id: join(id, i), name: partName(p.Header), notData: kindSignature}, nil)
			if err != nil {
				return err
			}
			continue
		}
		if err := w.entity(p.Header, p, join(id, i), depth+1); err != nil {
			return err
		}
	}
}

// malformed marks a parse error of the message's bytes as errMalformed. Errors
// of the reader under it (the connection) are wrapped in readError and kept.
func malformed(err error) error {
	var re *readError
	if errors.As(err, &re) || errors.Is(err, errMalformed) || errors.Is(err, errStop) {
		return err
	}
	return fmt.Errorf("%w: %v", errMalformed, err)
}

// readError is an error of the reader a message is read from (the network), as
// opposed to an error in the message's bytes.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// sourceReader marks the errors of r as readErrors.
type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

func join(id string, i int) string {
	if id == "" {
		return strconv.Itoa(i)
	}
	return id + "." + strconv.Itoa(i)
}

// readHeader reads a header of at most maxHeaderBytes and returns the reader of
// what follows it.
func readHeader(r io.Reader) (textproto.Header, io.Reader, error) {
	lr := &limitReader{r: r, n: maxHeaderBytes}
	br := bufio.NewReader(lr)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return h, nil, malformed(err)
	}
	lr.n = math.MaxInt64
	return h, br, nil
}

type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%w: a header over %d bytes", errMalformed, maxHeaderBytes)
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}

// transferDecoder undoes the part's Content-Transfer-Encoding. Only the
// transfer encoding: a text part's charset is left alone, the brand's file
// format decides how its bytes are read.
func transferDecoder(h textproto.Header, body io.Reader) (io.Reader, error) {
	enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	switch enc {
	case "", "7bit", "8bit", "binary":
		return errorsAsMalformed{body}, nil
	case "base64":
		return errorsAsMalformed{base64.NewDecoder(base64.StdEncoding, spaceDropper{body})}, nil
	case "quoted-printable":
		return errorsAsMalformed{quotedprintable.NewReader(body)}, nil
	}
	return nil, fmt.Errorf("%w: unknown Content-Transfer-Encoding %q", errMalformed, enc)
}

// errorsAsMalformed marks decoding errors (bad base64, a broken boundary) as
// errMalformed and keeps the reader's own.
type errorsAsMalformed struct{ r io.Reader }

func (e errorsAsMalformed) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		err = malformed(err)
	}
	return n, err
}

// spaceDropper drops the spaces and tabs some mailers leave in base64 (the
// decoder itself skips line breaks).
type spaceDropper struct{ r io.Reader }

func (s spaceDropper) Read(b []byte) (int, error) {
	for {
		n, err := s.r.Read(b)
		kept := 0
		for _, c := range b[:n] {
			if c != ' ' && c != '\t' {
				b[kept] = c
				kept++
			}
		}
		if kept > 0 || err != nil || n == 0 {
			return kept, err
		}
	}
}

// contentType is the part's media type (lower-case; text/plain when absent,
// RFC 2045 §5.2) and parameters.
func contentType(h textproto.Header) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	return parseParams(v)
}

// partName is a part's file name: the Content-Disposition filename, else the
// Content-Type name, decoded (RFC 2231 in any charset, RFC 2047 words). It is
// not sanitised: the poller refuses names that are not plain file names.
func partName(h textproto.Header) string {
	_, dp := parseParams(h.Get("Content-Disposition"))
	if name := dp["filename"]; name != "" {
		return name
	}
	_, cp := parseParams(h.Get("Content-Type"))
	return cp["name"]
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

// decodeWords decodes RFC 2047 encoded words (=?charset?B?...?=); a value that
// cannot be decoded is kept as it is.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// parseParams parses a Content-Type or Content-Disposition value into its
// lower-cased value and parameters (keys lower-cased). Unlike mime.ParseMediaType
// it decodes RFC 2231 values in every charset (filename*=iso-8859-1'fr'r%E9sum%E9.csv),
// joins continuations (filename*0*=, filename*1=), decodes RFC 2047 words in
// plain values (a common non-standard way to write non-ASCII names), and keeps
// what it can of a malformed list rather than failing.
func parseParams(v string) (string, map[string]string) {
	value, rest, _ := strings.Cut(v, ";")
	value = strings.ToLower(strings.TrimSpace(value))
	raw := map[string]string{}
	for {
		rest = strings.TrimLeft(rest, " \t\r\n;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 {
			break
		}
		if rest[eq] == ';' {
			rest = rest[eq+1:] // a parameter without a value
			continue
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t\r\n")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val = b.String()
			rest = rest[min(i+1, len(rest)):]
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else if j := strings.IndexByte(rest, ';'); j >= 0 {
			val, rest = strings.TrimSpace(rest[:j]), rest[j:]
		} else {
			val, rest = strings.TrimSpace(rest), ""
		}
		if _, dup := raw[key]; !dup && key != "" {
			raw[key] = val
		}
	}
	return value, joinParams(raw)
}

// joinParams puts RFC 2231 sections and extended values together.
func joinParams(raw map[string]string) map[string]string {
	type section struct {
		val      string
		extended bool
	}
	plain := map[string]string{}
	single := map[string]string{}
	sections := map[string]map[int]section{}
	for key, val := range raw {
		name, rest, found := strings.Cut(key, "*")
		switch {
		case !found:
			plain[name] = val
		case rest == "":
			single[name] = val
		default:
			num, ext := strings.CutSuffix(rest, "*")
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || n > maxParts {
				continue
			}
			if sections[name] == nil {
				sections[name] = map[int]section{}
			}
			sections[name][n] = section{val, ext}
		}
	}
	out := map[string]string{}
	for name, val := range plain {
		out[name] = decodeWords(val)
	}
	for name, secs := range sections {
		if _, ok := secs[0]; !ok {
			continue
		}
		var buf []byte
		cs := ""
		for i := 0; ; i++ {
			s, ok := secs[i]
			if !ok {
				break
			}
			if !s.extended {
				buf = append(buf, s.val...)
				continue
			}
			val := s.val
			if i == 0 {
				cs, val = splitCharset(val)
			}
			buf = append(buf, percentDecode(val)...)
		}
		out[name] = toUTF8(cs, buf)
	}
	for name, val := range single {
		cs, v := splitCharset(val)
		out[name] = toUTF8(cs, percentDecode(v))
	}
	return out
}

// splitCharset splits an RFC 2231 extended value charset'language'value.
func splitCharset(v string) (string, string) {
	cs, rest, ok := strings.Cut(v, "'")
	if !ok {
		return "", v
	}
	_, value, ok := strings.Cut(rest, "'")
	if !ok {
		return "", v
	}
	return strings.ToLower(cs), value
}

func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if b, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(b))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return out
}

// toUTF8 converts b from charset cs (empty: UTF-8) to UTF-8; bytes in an
// unknown charset are kept as they are.
func toUTF8(cs string, b []byte) string {
	switch cs {
	case "", "utf-8", "utf8", "us-ascii":
		return string(b)
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		return string(b)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return string(b)
	}
	return string(out)
}
