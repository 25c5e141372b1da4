package processors

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path"
)

// ArchiveEntry is one data file of a zip that holds several.
type ArchiveEntry struct {
	Name string // its base name, which its result file is named by
	Path string // where it is in the archive
}

// SplitArchive reads a received file that is a zip of several data files, to
// be applied each as a file of its own: it calls each with every data entry,
// in the archive's order, and its bytes (inflated, their size bounded by l,
// their checksum checked at the end), and reports true. It reports false,
// calling nothing, for any other file (one data file in a zip, a workbook, a
// text file): Open reads those. What macOS and Windows leave in a zip
// (__MACOSX/, .DS_Store, Thumbs.db) is not data. An archive that cannot be
// split (an unsafe entry name, damage, over a limit, an encrypted entry) is a
// *FileError; an error each returns is returned as it is.
func SplitArchive(r io.ReaderAt, size int64, name string, l Limits, each func(e ArchiveEntry, body io.Reader) error) (bool, error) {
	l = l.WithDefaults()
	var head [4]byte
	if n, _ := r.ReadAt(head[:], 0); n < len(head) || !bytes.Equal(head[:], magicZip) || size > l.MaxFileBytes {
		return false, nil
	}
	o := &opener{limits: l, progress: &progressReaderAt{r: r}, size: size}
	defer func() {
		for _, c := range o.closers {
			c()
		}
	}()
	zr, err := zip.NewReader(o.progress, size)
	if err != nil || isWorkbook(zr) {
		return false, nil // Open says what is wrong with it
	}
	data, _, err := o.dataEntries(zr, name)
	if err != nil {
		return false, err
	}
	if len(data) < 2 {
		return false, nil
	}
	for _, e := range data {
		if err := checkEntry(e, name); err != nil {
			return false, err
		}
	}
	var inflated int64
	for _, e := range data {
		body := &readTracker{r: o.openEntryLimited(e, &inflated, o.entryLimit(e))}
		if err := each(ArchiveEntry{Name: path.Base(e.Name), Path: e.Name}, body); err != nil {
			if body.err == nil {
				return false, err // each's own failure (writing its copy, say)
			}
			// Reading the entry failed: damage or a bomb, unless the received
			// bytes themselves could not be read (then a retry may do).
			return false, o.translate(fmt.Errorf("%q in %s: %w", e.Name, name, body.err))
		}
	}
	return true, nil
}

// readTracker remembers the first error reading r, other than its end.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}
