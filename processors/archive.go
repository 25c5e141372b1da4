package processors

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/returnsd/returnsd/outcome"
)

// maxNesting is how deep archives may nest: a .zip or .gz received (depth 0) may
// hold one more .zip or .gz (depth 1), whose entry must then be the data itself.
// Brands zip a gzipped export now and then; nobody nests deeper by accident.
const maxNesting = 2

// expansionFloor is an output size under which the expansion ratio is not
// checked: a small, very repetitive CSV compresses far beyond any sensible ratio
// and is harmless, and a zip bomb is by definition much larger.
const expansionFloor = 8 << 20

// expansionLimit is how many bytes one decompressed stream may yield: at most
// MaxUncompressedBytes, and at most MaxExpansionRatio times the received file
// (the true compressed size of every layer inside it).
func (o *opener) expansionLimit() int64 {
	byRatio := int64(o.limits.MaxExpansionRatio) * o.size
	if o.size != 0 && byRatio/o.size != int64(o.limits.MaxExpansionRatio) { // overflow
		byRatio = o.limits.MaxUncompressedBytes
	}
	return min(o.limits.MaxUncompressedBytes, max(byRatio, expansionFloor))
}

func (o *opener) tooLarge(name string, declared bool, n uint64) *FileError {
	if declared { // a damaged archive can declare nonsense too; either way it is refused
		return &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
			"%s declares %d bytes uncompressed, over the limit of %d bytes for this %d-byte file",
			displayName(name), n, o.expansionLimit(), o.size)}
	}
	return &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
		"%s expands to more than %d bytes, the limit for this %d-byte file",
		displayName(name), o.expansionLimit(), o.size)}
}

func (o *opener) openZip(r io.ReaderAt, size int64, name string, depth int) (recordSource, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below, with a better reason
		if o.progress.err.Load() != nil {
			return nil, err
		}
		// It starts like a zip (that is how it got here), but its directory at the
		// end cannot be read: cut short, most likely.
		return nil, &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf(
			"%s is a damaged or truncated zip archive: its directory at the end cannot be read", displayName(name))}
	}
	if isWorkbook(zr) {
		return o.openXLSX(zr, name)
	}
	if depth >= maxNesting {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%s is an archive inside an archive inside an archive; send the data file in at most two", displayName(name))}
	}
	data, names, err := o.dataEntries(zr, name)
	if err != nil {
		return nil, err
	}
	if len(data) != 1 {
		listed := "no entries"
		if len(names) > 0 {
			listed = "entries " + strings.Join(names, ", ")
		}
		reason := fmt.Sprintf("%s holds %d data files (%s); one file of one brand is applied at a time", displayName(name), len(data), listed)
		if len(data) == 0 {
			reason = fmt.Sprintf("%s holds no data file (%s)", displayName(name), listed)
		} else if depth == 0 {
			// A source splits such an archive into its files; the command line and a
			// nested archive do not.
			reason += ": apply its files one by one, or deliver the archive through a source, which applies each"
		}
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: reason}
	}
	e := data[0]
	if err := checkEntry(e, name); err != nil {
		return nil, err
	}
	if err := o.verifyEntry(e, name, depth+1); err != nil {
		return nil, err
	}
	return o.openStream(o.openEntry(e, new(int64)), e.Name, depth+1)
}

// openEntry inflates a zip entry itself rather than through zip.File.Open, which
// refuses an entry that outgrows its header with a bare ErrFormat before the bytes
// can be counted: here the count is ours, trusting no header, and a bomb with a
// lying header is reported as one. The bytes are counted into inflated, which
// the entries of one workbook share.
func (o *opener) openEntry(e *zip.File, inflated *int64) io.Reader {
	return o.openEntryLimited(e, inflated, o.expansionLimit())
}

func (o *opener) openEntryLimited(e *zip.File, inflated *int64, limit int64) io.Reader {
	raw, err := e.OpenRaw()
	if err != nil {
		// A local header that is not where the directory says (past the end, so
		// io.EOF) is a broken zip, never an empty entry.
		return errReader{fmt.Errorf("%q: %w", e.Name, zip.ErrFormat)}
	}
	var r io.Reader = raw
	if e.Method == zip.Deflate {
		fr := flate.NewReader(raw)
		o.closers = append(o.closers, fr.Close)
		r = fr
	}
	r = &expansionReader{r: r, n: inflated, limit: limit, o: o, name: e.Name}
	return &crcReader{r: r, hash: crc32.NewIEEE(), want: e.CRC32, name: e.Name}
}

// entryLimit is how far one zip entry may expand: as far as the whole file may,
// and past expansionFloor no further than the ratio allows for its own
// compressed size.
func (o *opener) entryLimit(e *zip.File) int64 {
	byRatio := int64(min(uint64(o.limits.MaxExpansionRatio)*max(e.CompressedSize64, 1), 1<<62))
	return min(o.expansionLimit(), max(expansionFloor, byRatio))
}

// verifyEntry reads a zip entry to its end, into nothing, before its content is
// used (see verify).
func (o *opener) verifyEntry(e *zip.File, archive string, depth int) error {
	name := archive + "/" + e.Name
	limit := o.entryLimit(e)
	err := o.verify(o.openEntryLimited(e, new(int64), limit), name, depth)
	var fe *FileError
	if errors.As(err, &fe) && fe.Code == outcome.UnsafeArchive && e.UncompressedSize64 > uint64(limit) {
		return o.tooLarge(name, true, e.UncompressedSize64) // what it declared, now seen to be so
	}
	return err
}

// unsafeEntryName reports a name that would escape a folder if extracted ("zip
// slip"). We never extract, but such an archive is crafted, not exported.
func unsafeEntryName(name string) bool {
	if strings.Contains(name, `\`) || strings.HasPrefix(name, "/") ||
		(len(name) >= 2 && name[1] == ':') {
		return true
	}
	return slices.Contains(strings.Split(name, "/"), "..")
}

// ignoredEntry reports entries that are not data: folders, and what macOS,
// Windows and editors leave behind (__MACOSX/, .DS_Store, ._file, Thumbs.db,
// desktop.ini).
func ignoredEntry(e *zip.File) bool {
	base := path.Base(e.Name)
	return strings.HasSuffix(e.Name, "/") || e.FileInfo().IsDir() ||
		strings.HasPrefix(e.Name, "__MACOSX/") || strings.HasPrefix(base, ".") ||
		strings.EqualFold(base, "Thumbs.db") || strings.EqualFold(base, "desktop.ini")
}

// dataEntries are the entries of a zip that hold data, checked: not too many,
// none with a name pointing outside the archive.
func (o *opener) dataEntries(zr *zip.Reader, name string) (data []*zip.File, names []string, err error) {
	if len(zr.File) > o.limits.MaxArchiveEntries {
		return nil, nil, &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
			"%s has %d entries, over the limit of %d", displayName(name), len(zr.File), o.limits.MaxArchiveEntries)}
	}
	for _, e := range zr.File {
		if unsafeEntryName(e.Name) {
			return nil, nil, &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
				"%s has an entry named %q, which points outside the archive", displayName(name), e.Name)}
		}
		names = append(names, fmt.Sprintf("%q", e.Name))
		if !ignoredEntry(e) {
			data = append(data, e)
		}
	}
	return data, names, nil
}

// checkEntry refuses an entry returnsd cannot inflate.
func checkEntry(e *zip.File, name string) error {
	if e.Flags&0x1 != 0 {
		return &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%q in %s is encrypted; send it without a password", e.Name, displayName(name))}
	}
	if e.Method != zip.Store && e.Method != zip.Deflate {
		return &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%q in %s uses compression method %d; use the standard (deflate) zip compression", e.Name, displayName(name), e.Method)}
	}
	return nil
}

// openNestedZip reads a zip (or xlsx) held inside another container. A zip needs
// random access, so its bytes go to a temporary file: already bounded by the
// expansion limit of the outer layer, and removed by Close.
func (o *opener) openNestedZip(br *bufio.Reader, name string, depth int) (recordSource, error) {
	tmp, err := os.CreateTemp("", "returnsd-nested-*.zip")
	if err != nil {
		return nil, fmt.Errorf("processors: spool nested archive: %w", err)
	}
	o.closers = append(o.closers, func() error {
		return errors.Join(tmp.Close(), os.Remove(tmp.Name()))
	})
	limited := &expansionReader{r: br, n: new(int64), limit: o.expansionLimit(), o: o, name: name}
	n, err := io.Copy(tmp, limited)
	if err != nil {
		return nil, err
	}
	return o.openAt(tmp, n, name, depth)
}

func (o *opener) openGzip(r io.Reader, name string, depth int) (recordSource, error) {
	if depth >= maxNesting {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%s is an archive inside an archive inside an archive; send the data file in at most two", displayName(name))}
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	o.closers = append(o.closers, zr.Close)
	inner := path.Base(strings.ReplaceAll(zr.Name, `\`, "/"))
	if zr.Name == "" || inner == "." || inner == "/" {
		inner = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".gzip")
	}
	return o.openStream(&expansionReader{r: zr, n: new(int64), limit: o.expansionLimit(), o: o, name: name}, inner, depth+1)
}

// verify reads a compressed stream (a zip entry, a gzip file), and any gzip
// inside it, to its end before its content is used, into nothing: memory stays
// bounded and the bytes are counted against the expansion limit.
//
// Headers are only claims. A bomb is told by what it yields, not by the size it
// declares (the last four bytes of a gzip cut short are whatever it was cut at,
// and a damaged zip header declares nonsense), and damage is told by the stream
// itself: truncated, corrupt, or failing its checksum, the file is DAMAGED_FILE
// before a byte of it is parsed. Otherwise damage in the first bytes could pass
// for a header that matches no file kind, and a checksum checked at the end
// would come too late to say why. depth is the nesting of the stream's content
// (see maxNesting): gzip deeper than openGzip reads is not looked into.
func (o *opener) verify(r io.Reader, name string, depth int) error {
	err := o.drain(r, name, depth)
	var fe *FileError
	switch {
	case err == nil:
		return nil
	case o.progress.err.Load() != nil:
		return err // reading the received bytes failed: worth a retry
	case errors.As(err, &fe):
		return fe // a bomb, or a zip entry failing its checksum
	}
	return o.damaged(name, err)
}

func (o *opener) drain(r io.Reader, name string, depth int) error {
	br := bufio.NewReaderSize(r, 32<<10)
	head, err := br.Peek(len(magicGzip))
	if err != nil && err != io.EOF {
		return err
	}
	if !bytes.HasPrefix(head, magicGzip) || depth >= maxNesting {
		_, err := io.Copy(io.Discard, br)
		return err
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return err
	}
	defer zr.Close()
	return o.drain(&expansionReader{r: zr, n: new(int64), limit: o.expansionLimit(), o: o, name: name}, name, depth+1)
}

// damaged says what is wrong with a compressed stream that could not be read to
// its end: the archive is the brand's to send again, not ours to retry.
func (o *opener) damaged(name string, err error) *FileError {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf(
			"%s is truncated: its compressed data ends early", displayName(name))}
	}
	return &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf("%s is damaged: %s", displayName(name), damageText(err))}
}

// damageText says in words what a decompressor or the XML decoder found wrong,
// with anything the file put in the error made printable.
func damageText(err error) string {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated: its compressed data ends early"
	case errors.Is(err, gzip.ErrChecksum):
		return "its content does not match its checksum"
	case errors.Is(err, gzip.ErrHeader):
		return "its gzip header is invalid"
	case errors.As(err, &corrupt):
		return fmt.Sprintf("its compressed data is corrupt at byte %d", int64(corrupt))
	case errors.Is(err, zip.ErrFormat):
		return "its zip directory or headers are missing or broken"
	}
	return printable(err.Error())
}

// expansionReader counts the bytes a decompressor actually yields and stops at the
// limit, whatever the archive's headers claim.
type expansionReader struct {
	r     io.Reader
	n     *int64 // shared by the parts of one workbook
	limit int64
	o     *opener
	name  string
}

func (e *expansionReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	*e.n += int64(n)
	if *e.n > e.limit {
		return 0, e.o.tooLarge(e.name, false, 0)
	}
	return n, err
}

// crcReader checks an entry's checksum at its end, as zip.File.Open would.
type crcReader struct {
	r    io.Reader
	hash hash.Hash32
	want uint32
	name string
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.hash.Write(p[:n])
	if err == io.EOF && c.want != 0 && c.hash.Sum32() != c.want {
		return n, &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf(
			"%s in the archive is damaged: its content does not match its checksum", strconv.Quote(c.name))}
	}
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
