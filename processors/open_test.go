package processors

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// openBytes opens data as a received file called name.
func openBytes(t testing.TB, data []byte, name string, f Format, l Limits) (*Table, error) {
	t.Helper()
	tb, err := Open(bytes.NewReader(data), int64(len(data)), name, f, l)
	if err == nil {
		t.Cleanup(func() { _ = tb.Close() })
	}
	return tb, err
}

// readAll returns the header and every record of a table.
func readAll(t testing.TB, tb *Table) ([]string, []csvRow, error) {
	t.Helper()
	var rows []csvRow
	for {
		rec, err := tb.Next()
		if err == io.EOF {
			return tb.Header(), rows, nil
		}
		if err != nil {
			return tb.Header(), rows, err
		}
		rows = append(rows, csvRow{rec.Line, append([]string(nil), rec.Fields...)})
	}
}

func gzipBytes(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Name = name
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type zipEntry struct {
	name string
	data []byte
}

func zipBytes(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const simpleCSV = "ActionId,Reason\r\n1001,ITEM_RETURNED\r\n1002,FRAUD\r\n"

var simpleRows = []csvRow{{2, []string{"1001", "ITEM_RETURNED"}}, {3, []string{"1002", "FRAUD"}}}

func TestOpenReadsEveryContainerAndEncoding(t *testing.T) {
	utf16le, _ := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(simpleCSV))
	utf16be, _ := unicode.UTF16(unicode.BigEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(simpleCSV))
	tests := []struct {
		name   string
		data   []byte
		file   string
		format Format
	}{
		{"PlainUTF8", []byte(simpleCSV), "a.csv", Format{}},
		{"UTF8WithBOMDropsTheBOM", append([]byte("\xEF\xBB\xBF"), simpleCSV...), "a.csv", Format{}},
		{"UTF16LEWithBOM", utf16le, "a.csv", Format{}},
		{"UTF16BEWithBOM", utf16be, "a.csv", Format{}},
		{"BOMWinsOverTheConfiguredEncoding", utf16le, "a.csv", Format{Encoding: "windows-1252"}},
		{"ConfiguredUTF8", []byte(simpleCSV), "a.csv", Format{Encoding: "UTF-8"}},
		{"GzipNamedByItsHeader", gzipBytes(t, "a.csv", []byte(simpleCSV)), "upload.bin", Format{}},
		{"GzipWithoutAName", gzipBytes(t, "", []byte(simpleCSV)), "a.csv.gz", Format{}},
		{"ZipWithOneFile", zipBytes(t, zipEntry{"a.csv", []byte(simpleCSV)}), "a.zip", Format{}},
		{"ZipIgnoringFoldersAndMacOSLeftovers", zipBytes(t,
			zipEntry{"x/", nil},
			zipEntry{"x/a.csv", []byte(simpleCSV)},
			zipEntry{"__MACOSX/x/._a.csv", []byte("junk")},
			zipEntry{"x/.DS_Store", []byte("junk")}), "a.zip", Format{}},
		{"GzipInsideAZip", zipBytes(t, zipEntry{"a.csv.gz", gzipBytes(t, "a.csv", []byte(simpleCSV))}), "a.zip", Format{}},
		{"ZipInsideAGzip", gzipBytes(t, "a.zip", zipBytes(t, zipEntry{"a.csv", []byte(simpleCSV)})), "a.zip.gz", Format{}},
		{"ZipInsideAZip", zipBytes(t, zipEntry{"inner.zip", zipBytes(t, zipEntry{"a.csv", []byte(simpleCSV)})}), "a.zip", Format{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := openBytes(t, tt.data, tt.file, tt.format, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			header, rows, err := readAll(t, tb)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(header, []string{"ActionId", "Reason"}) {
				t.Errorf("header %q", header)
			}
			if !reflect.DeepEqual(rows, simpleRows) {
				t.Errorf("rows %+v", rows)
			}
			if tb.Offset() != int64(len(tt.data)) {
				t.Errorf("offset %d at the end of a %d-byte file", tb.Offset(), len(tt.data))
			}
		})
	}
}

func TestOpenDecodesWindows1252(t *testing.T) {
	data, err := charmap.Windows1252.NewEncoder().Bytes([]byte("Oid;Note\r\nä-1;Preis 5 €\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := openBytes(t, data, "a.csv", Format{Encoding: "windows-1252"}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := readAll(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ä-1", "Preis 5 €"}; !reflect.DeepEqual(rows[0].Fields, want) {
		t.Errorf("got %q, want %q", rows[0].Fields, want)
	}
}

func TestOpenSkipsBlankRecordsButCountsTheirLines(t *testing.T) {
	tb, err := openBytes(t, []byte("\r\nActionId;Reason\r\n;\r\n\r\n1;OTHER\r\n  ;\t\r\n2;OTHER"), "a.csv", Format{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := readAll(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	want := []csvRow{{5, []string{"1", "OTHER"}}, {7, []string{"2", "OTHER"}}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got %+v, want %+v", rows, want)
	}
}

// failingReaderAt fails every read: Open must refuse some files without reading.
type failingReaderAt struct{ t testing.TB }

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) {
	f.t.Error("the file was read")
	return 0, errors.New("must not be read")
}

func TestOpenQuarantines(t *testing.T) {
	t.Run("AFileOverMaxFileBytesWithoutReadingIt", func(t *testing.T) {
		_, err := Open(failingReaderAt{t}, 300<<20, "big.csv", Format{}, Limits{})
		wantFileError(t, err, outcome.FileTooLarge, "314572800")
	})
	t.Run("AnEmptyFile", func(t *testing.T) {
		_, err := Open(failingReaderAt{t}, 0, "a.csv", Format{}, Limits{})
		wantFileError(t, err, outcome.EmptyFile)
	})
	t.Run("AFileOfBlankLines", func(t *testing.T) {
		_, err := openBytes(t, []byte("\r\n;;;\r\n\r\n"), "a.csv", Format{}, Limits{})
		wantFileError(t, err, outcome.EmptyFile, "header")
	})
	t.Run("AnUnknownEncodingName", func(t *testing.T) {
		_, err := openBytes(t, []byte(simpleCSV), "a.csv", Format{Encoding: "klingon-1"}, Limits{})
		wantFileError(t, err, outcome.Undecodable, "klingon-1")
	})
	t.Run("AnUnknownDelimiter", func(t *testing.T) {
		_, err := openBytes(t, []byte(simpleCSV), "a.csv", Format{Delimiter: "#"}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, "delimiter")
	})
	t.Run("InvalidUTF8SuggestingAnEncoding", func(t *testing.T) {
		latin1, _ := charmap.Windows1252.NewEncoder().Bytes([]byte("Oid,Note\r\nA1,ok\r\nA2,Müller\r\n"))
		tb, err := openBytes(t, latin1, "a.csv", Format{}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = readAll(t, tb)
		wantFileError(t, err, outcome.Undecodable, "line 3", "windows-1252")
	})
	t.Run("ATenMegabyteField", func(t *testing.T) {
		data := []byte("ActionId,Note\n1,\"" + strings.Repeat("x", 10<<20) + "\"\n")
		tb, err := openBytes(t, data, "a.csv", Format{}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = readAll(t, tb)
		wantFileError(t, err, outcome.FieldTooLarge, "line 2")
	})
	t.Run("MoreRowsThanMaxRows", func(t *testing.T) {
		tb, err := openBytes(t, []byte("a\n1\n2\n3\n"), "a.csv", Format{}, Limits{MaxRows: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, rows, err := readAll(t, tb)
		wantFileError(t, err, outcome.TooManyRows, "2 rows")
		if len(rows) != 2 {
			t.Errorf("read %d rows before stopping, want 2", len(rows))
		}
	})
	t.Run("AZipSlipEntryName", func(t *testing.T) {
		for _, name := range []string{"../../etc/cron.d/x.csv", "/etc/x.csv", `..\x.csv`, "a/../../x.csv", "C:/x.csv"} {
			data := zipBytes(t, zipEntry{"ok.csv", []byte(simpleCSV)}, zipEntry{name, []byte(simpleCSV)})
			_, err := openBytes(t, data, "a.zip", Format{}, Limits{})
			wantFileError(t, err, outcome.UnsafeArchive, "points outside")
		}
	})
	t.Run("AZipWithoutDataFiles", func(t *testing.T) {
		data := zipBytes(t, zipEntry{"dir/", nil}, zipEntry{"__MACOSX/._a.csv", []byte("x")})
		_, err := openBytes(t, data, "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, "holds no data file", `"__MACOSX/._a.csv"`)
	})
	t.Run("AZipWithTwoDataFilesNamingThem", func(t *testing.T) {
		data := zipBytes(t, zipEntry{"march.csv", []byte(simpleCSV)}, zipEntry{"april.csv", []byte(simpleCSV)})
		_, err := openBytes(t, data, "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, "holds 2 data files", `"march.csv"`, `"april.csv"`,
			"deliver the archive through a source")
	})
	t.Run("AZipWithTooManyEntries", func(t *testing.T) {
		var entries []zipEntry
		for i := range 20 {
			entries = append(entries, zipEntry{"__MACOSX/" + itoa4(i), nil})
		}
		_, err := openBytes(t, zipBytes(t, entries...), "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsafeArchive, "20 entries")
	})
	t.Run("AnEncryptedZipEntry", func(t *testing.T) {
		var b bytes.Buffer
		w := zip.NewWriter(&b)
		f, _ := w.CreateHeader(&zip.FileHeader{Name: "a.csv", Method: zip.Store, Flags: 0x1})
		_, _ = f.Write([]byte("encrypted bytes"))
		_ = w.Close()
		_, err := openBytes(t, b.Bytes(), "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, "encrypted")
	})
	t.Run("ArchivesNestedThreeDeep", func(t *testing.T) {
		inner := gzipBytes(t, "a.csv.gz", gzipBytes(t, "a.csv", []byte(simpleCSV)))
		_, err := openBytes(t, zipBytes(t, zipEntry{"a.csv.gz.gz", inner}), "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, "inside an archive inside an archive")
	})
	t.Run("ALegacyXLS", func(t *testing.T) {
		_, err := openBytes(t, append(append([]byte{}, magicOLE...), make([]byte, 512)...), "a.xls", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, ".xlsx")
	})
	t.Run("AFileNamedZipThatIsNot", func(t *testing.T) {
		_, err := openBytes(t, []byte(simpleCSV), "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.UnsupportedFormat, "not one")
	})
	t.Run("ADamagedGzip", func(t *testing.T) {
		data := gzipBytes(t, "a.csv", bytes.Repeat([]byte(simpleCSV), 1000))
		damaged := append(data[:len(data)/2:len(data)/2], data[len(data)-8:]...) // the middle is lost
		tb, err := openBytes(t, damaged, "a.csv.gz", Format{}, Limits{})
		if err == nil {
			_, _, err = readAll(t, tb)
		}
		wantFileError(t, err, outcome.DamagedFile, "compressed data")
	})
	t.Run("AZipEntryWithABadChecksum", func(t *testing.T) {
		var b bytes.Buffer
		w := zip.NewWriter(&b)
		f, _ := w.CreateRaw(&zip.FileHeader{Name: "a.csv", Method: zip.Store, CRC32: 12345,
			CompressedSize64: uint64(len(simpleCSV)), UncompressedSize64: uint64(len(simpleCSV))})
		_, _ = f.Write([]byte(simpleCSV))
		_ = w.Close()
		tb, err := openBytes(t, b.Bytes(), "a.zip", Format{}, Limits{})
		if err == nil {
			_, _, err = readAll(t, tb)
		}
		wantFileError(t, err, outcome.DamagedFile, "checksum")
	})
}

// bombPayload is 1 GiB of line feeds, deflated (about 1.3 MB). Blank lines, so
// that the CSV reader keeps asking for more instead of refusing a long field.
var bombPayload = sync.OnceValues(func() ([]byte, uint32) {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	chunk := bytes.Repeat([]byte{'\n'}, 1<<20)
	crc := crc32.NewIEEE()
	for range 1024 {
		_, _ = w.Write(chunk)
		_, _ = crc.Write(chunk)
	}
	_ = w.Close()
	return b.Bytes(), crc.Sum32()
})

// zipBomb is a zip whose one entry inflates to 1 GiB. A lying header declares 1 KB.
func zipBomb(t testing.TB, lying bool) []byte {
	t.Helper()
	payload, crc := bombPayload()
	size := uint64(1 << 30)
	if lying {
		size = 1000
	}
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateRaw(&zip.FileHeader{Name: "returns.csv", Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(payload)), UncompressedSize64: size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// gzipBomb is 1 GiB of line feeds, gzipped.
func gzipBomb(t testing.TB) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	payload, s := bombPayload()
	b.Write(payload)
	var trailer [8]byte
	trailer[0], trailer[1], trailer[2], trailer[3] = byte(s), byte(s>>8), byte(s>>16), byte(s>>24)
	trailer[7] = 0x40 // 1 GiB = 0x40000000
	b.Write(trailer[:])
	return b.Bytes()
}

func TestOpenRefusesDecompressionBombsFastWithBoundedMemory(t *testing.T) {
	tests := []struct {
		name string
		data func(testing.TB) []byte
		file string
	}{
		{"AZipBombByItsHeader", func(t testing.TB) []byte { return zipBomb(t, false) }, "bomb.zip"},
		{"AZipBombWithALyingHeaderByCountingItsBytes", func(t testing.TB) []byte { return zipBomb(t, true) }, "bomb.zip"},
		{"AGzipBombByItsTrailer", gzipBomb, "bomb.csv.gz"},
		{"AGzipBombWithALyingTrailerByCountingItsBytes", func(t testing.TB) []byte {
			b := gzipBomb(t)
			b[len(b)-1] = 0 // declares 0 bytes
			return b
		}, "bomb.csv.gz"},
		{"AZipBombInsideAZip", func(t testing.TB) []byte {
			return zipBytes(t, zipEntry{"inner.zip", zipBomb(t, true)})
		}, "bomb.zip"},
		{"AnXLSXBomb", func(t testing.TB) []byte {
			return xlsxPackage(t, string(make([]byte, 100<<20)))
		}, "bomb.xlsx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			tb, err := openBytes(t, data, tt.file, Format{}, Limits{})
			if err == nil {
				_, _, err = readAll(t, tb)
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			wantFileError(t, err, outcome.UnsafeArchive)
			if elapsed > 3*time.Second && !raceEnabled {
				t.Errorf("took %v to refuse", elapsed)
			}
			// TotalAlloc counts every allocation, freed or not: the bomb must not
			// have been inflated into memory.
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 64<<20 {
				t.Errorf("allocated %d MiB while refusing", grown>>20)
			}
		})
	}
}

func TestOffsetGrowsWhileReading(t *testing.T) {
	data := typicalUpdates(20_000)
	tb, err := openBytes(t, data, "a.csv", Format{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []int64
	for {
		if _, err := tb.Next(); err != nil {
			break
		}
		if o := tb.Offset(); len(seen) == 0 || o != seen[len(seen)-1] {
			seen = append(seen, o)
		}
	}
	if len(seen) < 5 || seen[len(seen)-1] != int64(len(data)) {
		t.Errorf("offsets %v for a %d-byte file", seen, len(data))
	}
}

func TestOpenTellsADamagedArchiveFromABomb(t *testing.T) {
	data := typicalUpdates(200)
	t.Run("AGzipCutAnywhereIsDamagedNeverABomb", func(t *testing.T) {
		gz := gzipBytes(t, "a.csv", data)
		limit := (&opener{limits: Limits{}.WithDefaults(), size: int64(len(gz))}).expansionLimit()
		nonsense := 0 // cuts whose last four bytes declare more than the limit
		for cut := 2; cut < len(gz); cut++ {
			b := gz[:cut]
			if len(b) >= 18 && int64(binary.LittleEndian.Uint32(b[len(b)-4:])) > limit {
				nonsense++
			}
			tb, err := openBytes(t, b, "a.csv.gz", Format{}, Limits{})
			if err == nil {
				_, _, err = readAll(t, tb)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Code != outcome.DamagedFile || strings.Contains(fe.Reason, "declares") {
				t.Fatalf("cut after %d of %d bytes: %v, want DAMAGED_FILE", cut, len(gz), err)
			}
		}
		if nonsense == 0 {
			t.Fatal("no cut declared a size over the limit: the test proves nothing")
		}
		t.Logf("%d cuts, %d of them declaring more than %d bytes", len(gz)-2, nonsense, limit)
	})
	t.Run("AZipCutAnywhereIsDamaged", func(t *testing.T) {
		z := zipBytes(t, zipEntry{"a.csv", data})
		for cut := 4; cut < len(z); cut += 7 {
			tb, err := openBytes(t, z[:cut], "a.zip", Format{}, Limits{})
			if err == nil {
				_, _, err = readAll(t, tb)
			}
			wantFileError(t, err, outcome.DamagedFile)
		}
	})
	t.Run("AZipHeaderDamagedToDeclareABombIsReadWhenItsContentChecksOut", func(t *testing.T) {
		z := zipBytes(t, zipEntry{"a.csv", []byte(simpleCSV)})
		dir := bytes.LastIndex(z, []byte("PK\x01\x02")) // the central directory's entry
		binary.LittleEndian.PutUint32(z[dir+24:], 0x7fffffff)
		tb, err := openBytes(t, z, "a.zip", Format{}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		_, rows, err := readAll(t, tb)
		if err != nil || !reflect.DeepEqual(rows, simpleRows) {
			t.Errorf("rows %+v, %v; want the file's rows", rows, err)
		}
	})
	t.Run("DamageIsFoundBeforeAnyContentIsUsed", func(t *testing.T) {
		// A stored (uncompressed) entry whose header row lost a bit reads as a
		// header that matches no file kind, unless the checksum is checked first.
		stored := func(name string, content []byte) []byte { // with "ActionId" damaged, if it shows
			var b bytes.Buffer
			w := zip.NewWriter(&b)
			f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(content); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			return bytes.Replace(b.Bytes(), []byte("ActionId"), []byte("ActionJd"), 1)
		}
		_, err := openBytes(t, stored("a.csv", []byte(simpleCSV)), "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.DamagedFile, "checksum")
		// A sound zip holding a gzip whose own checksum fails: the gzip inside is
		// checked too, before its header row is used.
		gz := gzipBytes(t, "a.csv", []byte(simpleCSV))
		gz[len(gz)-8] ^= 1
		_, err = openBytes(t, stored("a.csv.gz", gz), "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.DamagedFile, "checksum")
	})
	t.Run("AZipHeaderDeclaringABombOverDamagedContentIsDamaged", func(t *testing.T) {
		z := zipBytes(t, zipEntry{"a.csv", data})
		dir := bytes.LastIndex(z, []byte("PK\x01\x02"))
		binary.LittleEndian.PutUint32(z[dir+24:], 0x7fffffff)
		z[40] ^= 0xff // in the deflated data
		_, err := openBytes(t, z, "a.zip", Format{}, Limits{})
		wantFileError(t, err, outcome.DamagedFile)
	})
}
