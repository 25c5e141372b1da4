package processors

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
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
			"%s is a damaged or truncated zip archive (%s)", displayName(name), printable(err.Error()))}
	}
	if isWorkbook(zr) {
		return o.openXLSX(zr, name)
	}
	if depth >= maxNesting {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%s is an archive inside an archive inside an archive; send the data file in at most two", displayName(name))}
	}
	if len(zr.File) > o.limits.MaxArchiveEntries {
		return nil, &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
			"%s has %d entries, over the limit of %d", displayName(name), len(zr.File), o.limits.MaxArchiveEntries)}
	}
	var data []*zip.File
	var names []string
	for _, e := range zr.File {
		if unsafeEntryName(e.Name) {
			return nil, &FileError{Code: outcome.UnsafeArchive, Reason: fmt.Sprintf(
				"%s has an entry named %q, which points outside the archive", displayName(name), e.Name)}
		}
		names = append(names, fmt.Sprintf("%q", e.Name))
		if !ignoredEntry(e) {
			data = append(data, e)
		}
	}
	if len(data) != 1 {
		listed := "no entries"
		if len(names) > 0 {
			listed = "entries " + strings.Join(names, ", ")
		}
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%s must hold exactly one data file, but has %d (%s)", displayName(name), len(data), listed)}
	}
	e := data[0]
	if e.Flags&0x1 != 0 {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%q in %s is encrypted; send it without a password", e.Name, displayName(name))}
	}
	if e.Method != zip.Store && e.Method != zip.Deflate {
		return nil, &FileError{Code: outcome.UnsupportedFormat, Reason: fmt.Sprintf(
			"%q in %s uses compression method %d; use the standard (deflate) zip compression", e.Name, displayName(name), e.Method)}
	}
	if err := o.checkDeclared(e, name); err != nil {
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
		return errReader{err}
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

// checkDeclared refuses a zip entry whose header declares a bomb before a byte of
// it is used. A header is only a claim, and a damaged one claims nonsense: so an
// entry declared over the limits is inflated and counted (into nothing, its
// memory bounded) to tell a bomb, refused as UNSAFE_ARCHIVE, from a damaged
// header, which is DAMAGED_FILE unless the entry itself checks out.
func (o *opener) checkDeclared(e *zip.File, archive string) error {
	limit := o.expansionLimit()
	if e.UncompressedSize64 > expansionFloor {
		// The whole file's ratio also holds for each entry.
		limit = min(limit, max(expansionFloor, int64(min(uint64(o.limits.MaxExpansionRatio)*max(e.CompressedSize64, 1), 1<<62))))
	}
	if e.UncompressedSize64 <= uint64(limit) {
		return nil
	}
	_, err := io.Copy(io.Discard, o.openEntryLimited(e, new(int64), limit))
	var fe *FileError
	switch {
	case err == nil:
		return nil // only the header was wrong: the content is whole and within the limits
	case o.progress.err.Load() != nil:
		return err
	case errors.As(err, &fe) && fe.Code == outcome.UnsafeArchive:
		return o.tooLarge(archive+"/"+e.Name, true, e.UncompressedSize64)
	case errors.As(err, &fe):
		return err
	}
	return o.damaged(archive+"/"+e.Name, err)
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

// ignoredEntry reports entries that are not data: folders, and what macOS and
// editors leave behind (__MACOSX/, .DS_Store, ._file).
func ignoredEntry(e *zip.File) bool {
	return strings.HasSuffix(e.Name, "/") || e.FileInfo().IsDir() ||
		strings.HasPrefix(e.Name, "__MACOSX/") || strings.HasPrefix(path.Base(e.Name), ".")
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

// checkGzipTrailer reads the size a gzip stream declares in its last four bytes
// (modulo 4 GiB, so only ever a hint) to refuse a bomb before its content is
// used. The last four bytes of a stream cut short are whatever it was cut at, so
// a stream declaring more than the limit is inflated and counted (into nothing)
// first: a bomb is refused as UNSAFE_ARCHIVE, a cut-off or damaged stream is
// DAMAGED_FILE.
func (o *opener) checkGzipTrailer(r io.ReaderAt, size int64, name string) error {
	if size < 18 { // header + trailer; anything shorter fails in gzip.NewReader
		return nil
	}
	var trailer [4]byte
	if _, err := r.ReadAt(trailer[:], size-4); err != nil && err != io.EOF {
		return err
	}
	declared := uint64(binary.LittleEndian.Uint32(trailer[:]))
	if declared <= uint64(o.expansionLimit()) {
		return nil
	}
	zr, err := gzip.NewReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return o.damaged(name, err)
	}
	defer zr.Close()
	_, err = io.Copy(io.Discard, &expansionReader{r: zr, n: new(int64), limit: o.expansionLimit(), o: o, name: name})
	var fe *FileError
	switch {
	case err == nil:
		return nil // unreachable: gzip checks the trailer's size against the content
	case o.progress.err.Load() != nil:
		return err
	case errors.As(err, &fe) && fe.Code == outcome.UnsafeArchive:
		return o.tooLarge(name, true, declared)
	}
	return o.damaged(name, err)
}

// damaged says what is wrong with a compressed stream that could not be read to
// its end: the archive is the brand's to send again, not ours to retry.
func (o *opener) damaged(name string, err error) *FileError {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe
	}
	var corrupt flate.CorruptInputError
	var what string
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		what = "is truncated: it ends in the middle of its compressed data"
	case errors.Is(err, gzip.ErrChecksum):
		what = "is damaged: its content does not match its checksum"
	case errors.Is(err, gzip.ErrHeader):
		what = "is damaged: its gzip header is invalid"
	case errors.As(err, &corrupt):
		what = fmt.Sprintf("is damaged: its compressed data is corrupt at byte %d", int64(corrupt))
	default:
		what = fmt.Sprintf("is damaged or truncated (%s)", printable(err.Error()))
	}
	return &FileError{Code: outcome.DamagedFile, Reason: fmt.Sprintf("%s %s", displayName(name), what)}
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
