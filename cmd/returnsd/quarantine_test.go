package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxHeapInUse bounds the test process's heap while it refuses hostile files:
// its cases together peak under 40 MiB; reading the 1 GiB file whole or
// inflating a bomb into memory would blow well past it. The heap is the whole
// process's, so TestQuarantine runs alone, before the package's parallel tests
// (which peaked over 200 MiB of their own alongside it).
const maxHeapInUse = 128 << 20

// TestQuarantine drives files that cannot be processed through `returnsd apply` and
// checks each ends QUARANTINED with a one-line reason, keeps its bytes (when
// within the size limit), applies nothing, and costs bounded memory.
func TestQuarantine(t *testing.T) {
	// Not parallel: the heap it bounds is the process's (maxHeapInUse).

	type testCase struct {
		name string
		// file writes the file to path.
		file func(t *testing.T, path string)
		// configEdits, when set, edit the example config (old, new, ...) passed by --config.
		configEdits []string
		fileName    string
		wantCode    string
		wantReason  []string // each must appear in the reason
		// bytesKept: within max_file_bytes, so the ledger keeps the original bytes.
		bytesKept bool
		// within bounds how long the refusal may take (0: no bound).
		within time.Duration
	}
	cases := []testCase{
		{
			name:        "AFileOverMaxFileBytesIsRefusedUnread",
			configEdits: []string{"max_file_bytes: 268435456", "max_file_bytes: 1048576"},
			file:        sparseFile(1_000_000_000), // "1 GB", costing no disk
			fileName:    "big.csv",
			wantCode:    "FILE_TOO_LARGE",
			wantReason:  []string{"1000000000 bytes", "limit of 1048576", "limits.max_file_bytes"},
			within:      5 * time.Second,
		},
		{
			name:       "AOneGiBFileIsRefusedUnreadUnderTheDefaultLimit",
			file:       sparseFile(1<<30 + 1),
			fileName:   "huge.csv",
			wantCode:   "FILE_TOO_LARGE",
			wantReason: []string{fmt.Sprint(1<<30+1) + " bytes", "limit of 268435456"},
			within:     5 * time.Second,
		},
		{
			name:       "AZipBombIsRefusedByItsDeclaredSize",
			file:       zipBomb(1<<30+1<<20, false),
			fileName:   "bomb.zip",
			wantCode:   "UNSAFE_ARCHIVE",
			wantReason: []string{`returns.csv" declares 1074790421 bytes uncompressed, over the limit`},
			bytesKept:  true,
			within:     10 * time.Second,
		},
		{
			// A header declaring a small size is not believed: inflation is counted and stopped.
			name:       "AZipBombLyingAboutItsSizeIsStoppedWhileInflating",
			file:       zipBomb(1<<30+1<<20, true),
			fileName:   "liar.zip",
			wantCode:   "UNSAFE_ARCHIVE",
			wantReason: []string{`returns.csv" expands to more than`},
			bytesKept:  true,
			within:     30 * time.Second,
		},
		{
			name: "AFieldOfTenMegabytesIsRefused",
			file: func(t *testing.T, path string) {
				var b bytes.Buffer
				b.WriteString("ActionId,Reason,Note\n5001,RETURNED,ok\n5002,RETURNED,\"")
				b.Write(bytes.Repeat([]byte("x"), 10<<20))
				b.WriteString("\"\n5003,APPROVED,\n")
				writeFile(t, path, b.Bytes())
			},
			fileName:   "field.csv",
			wantCode:   "FIELD_TOO_LARGE",
			wantReason: []string{"65536"},
			bytesKept:  true,
		},
		{
			name:       "AHeaderWithNoKnownColumnIsOfUnknownKind",
			file:       contents("Foo,Bar,Baz\n1,2,3\n"),
			fileName:   "foo.csv",
			wantCode:   "UNKNOWN_KIND",
			wantReason: []string{`"Foo", "Bar", "Baz"`},
			bytesKept:  true,
		},
		{
			name:       "AnUpdateFileWithoutReasonMissesAColumn",
			file:       contents("ActionId,Operation,Amount\n5001,REVERSE,\n"),
			fileName:   "noreason.csv",
			wantCode:   "MISSING_COLUMN",
			wantReason: []string{"Reason"},
			bytesKept:  true,
		},
		{
			name:       "InvalidUTF8IsUndecodable",
			file:       contents("ActionId,Reason,Note\n5001,RETURNED,ok\n5002,RETURNED,caf\xe9 cr\xe8me\n"),
			fileName:   "latin1.csv",
			wantCode:   "UNDECODABLE",
			wantReason: []string{"line 3"},
			bytesKept:  true,
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, b := setupLoaded(t)
			args := []string{"apply", "--brand", "acme"}
			if tc.configEdits != nil {
				args = append(args, "--config", writeConfig(t, t.TempDir(), tc.configEdits...))
			}
			path := b.path(tc.fileName)
			tc.file(t, path)
			before := c.exportCSV()
			events := b.queryInt(t, "SELECT count(*) FROM ledger_events")

			peak := watchHeap(t)
			began := time.Now()
			o := c.run(append(args, path)...)
			took := time.Since(began)
			peakHeap := peak()

			t.Logf("refused in %v, peak HeapInuse %d MiB", took.Round(time.Millisecond), peakHeap>>20)
			checkOneLineError(t, o, 3, tc.fileName+" quarantined: "+tc.wantCode)
			files := b.receivedFiles(t)
			f := files[len(files)-1]
			if f.name != tc.fileName || f.status != "QUARANTINED" {
				t.Fatalf("received file %+v, want %s QUARANTINED", f, tc.fileName)
			}
			if f.reasonCode != tc.wantCode {
				t.Errorf("reason_code %s, want %s", f.reasonCode, tc.wantCode)
			}
			line := fmt.Sprintf("QUARANTINED (file %d): %s: %s\n", f.id, f.reasonCode, f.reason)
			if o.stdout != line || strings.Contains(f.reason, "\n") {
				t.Errorf("stdout = %q, want %q", o.stdout, line)
			}
			if !strings.Contains(o.stderr, tc.fileName+" quarantined: "+f.reasonCode+": "+f.reason+"\n") {
				t.Errorf("stderr does not give the reason %q:\n%s", f.reason, o.stderr)
			}
			for _, w := range tc.wantReason {
				if !strings.Contains(f.reason, w) {
					t.Errorf("reason %q does not say %q", f.reason, w)
				}
			}

			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.size != info.Size() {
				t.Errorf("recorded size %d, want %d", f.size, info.Size())
			}
			chunks := b.queryInt(t, "SELECT count(*) FROM received_file_chunks WHERE file_id = $1", f.id)
			if tc.bytesKept {
				if !f.bytesKept || b.storedSHA256(t, f.id) != fileSHA256(t, path) {
					t.Errorf("the ledger does not keep the original bytes (bytes_kept %v, %d chunks)", f.bytesKept, chunks)
				}
			} else if f.bytesKept || chunks != 0 || len(f.sha256) != 0 {
				// Not even hashed: the refusal did not read the file.
				t.Errorf("a file over the size limit was read: bytes_kept %v, %d chunks, sha256 %x", f.bytesKept, chunks, f.sha256)
			}

			if after := c.exportCSV(); after != before {
				t.Errorf("a quarantined file changed the ledger:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if got := b.queryInt(t, "SELECT count(*) FROM ledger_events"); got != events {
				t.Errorf("ledger events %d, want %d as before", got, events)
			}
			if got := b.queryInt(t, "SELECT count(*) FROM row_outcomes WHERE file_id = $1", f.id); got != 0 {
				t.Errorf("a quarantined file has %d row outcomes", got)
			}
			if got := b.queryInt(t, "SELECT count(*) FROM request_ids"); got != 0 {
				t.Errorf("a quarantined file took %d request ids", got)
			}
			if _, err := os.Stat(b.path("result_" + strings.TrimSuffix(tc.fileName, fileExt(tc.fileName)) + ".csv")); !os.IsNotExist(err) {
				t.Errorf("a result file was written for a quarantined file (%v)", err)
			}
			if peakHeap > maxHeapInUse {
				t.Errorf("peak HeapInuse %d MiB while refusing the file, want under %d MiB", peakHeap>>20, maxHeapInUse>>20)
			}
			if tc.within > 0 && took > tc.within {
				t.Errorf("refusing the file took %v, want under %v", took, tc.within)
			}
		})
	}
}

func fileExt(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func contents(s string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) { writeFile(t, path, []byte(s)) }
}

// sparseFile makes a file of size bytes that takes no disk: a header and a hole.
func sparseFile(size int64) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		writeFile(t, path, []byte("ActionId,Reason\n5001,RETURNED\n"))
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
	}
}

// zipBomb makes a small zip whose one entry, returns.csv, inflates to about size
// bytes of a valid update row repeated (a 4 KiB row whose Note is mostly spaces,
// which deflate squeezes about 1000:1). It is built without ever holding or
// compressing the whole: 1 MiB of rows is deflated once and its stream repeated
// (each piece is flushed to a byte boundary and refers to nothing before it, so
// the pieces concatenate into one valid deflate stream). With lie, the zip's
// headers declare a size of 1 KiB instead of the truth.
func zipBomb(size int64, lie bool) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		const rowLen = 4 << 10 // 1 MiB holds whole rows
		row := "5001,RETURNED," + strings.Repeat(" ", rowLen-len("5001,RETURNED,zip bomb\n")) + "zip bomb\n"
		header := []byte("ActionId,Reason,Note\n")
		chunk := bytes.Repeat([]byte(row), (1<<20)/len(row))
		n := (size - int64(len(header)) + int64(len(chunk)) - 1) / int64(len(chunk))

		deflate := func(p []byte, final bool) []byte {
			var b bytes.Buffer
			w, _ := flate.NewWriter(&b, flate.BestCompression)
			w.Write(p)
			if final {
				w.Close()
			} else {
				w.Flush()
			}
			return b.Bytes()
		}
		dHeader, dChunk, dEnd := deflate(header, false), deflate(chunk, false), deflate(nil, true)
		crc := crc32.ChecksumIEEE(header)
		for range n {
			crc = crc32.Update(crc, crc32.IEEETable, chunk)
		}
		uncompressed := uint64(len(header)) + uint64(n)*uint64(len(chunk))
		compressed := uint64(len(dHeader)) + uint64(n)*uint64(len(dChunk)) + uint64(len(dEnd))
		declared := uncompressed
		if lie {
			declared = 1 << 10
		}

		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zw := zip.NewWriter(f)
		w, err := zw.CreateRaw(&zip.FileHeader{Name: "returns.csv", Method: zip.Deflate, CRC32: crc,
			CompressedSize64: compressed, UncompressedSize64: declared, Modified: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(dHeader)
		for range n {
			w.Write(dChunk)
		}
		if _, err := w.Write(dEnd); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		// It is a real zip of real rows: its first MiB reads back through archive/zip
		// (raw, then inflated: archive/zip's Open would stop a liar at its declared size).
		zr, err := zip.OpenReader(path)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		raw, err := zr.File[0].OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, len(header)+len(chunk))
		if _, err := io.ReadFull(flate.NewReader(raw), first); err != nil || !bytes.Equal(first, append(header, chunk...)) {
			t.Fatalf("the zip bomb does not read back as its rows (%v)", err)
		}
		info, _ := os.Stat(path)
		t.Logf("zip bomb: %d bytes inflating to %d (%.0f:1), declaring %d", info.Size(), uncompressed,
			float64(uncompressed)/float64(info.Size()), declared)
	}
}

// watchHeap samples the process's HeapInuse until the returned function is called,
// which returns the highest value seen.
func watchHeap(t *testing.T) func() uint64 {
	var (
		mu   sync.Mutex
		peak uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		peak = max(peak, m.HeapInuse)
		mu.Unlock()
	}
	sample()
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	var once sync.Once
	finish := func() uint64 {
		once.Do(func() {
			close(stop)
			<-done
			sample()
		})
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
	t.Cleanup(func() { finish() })
	return finish
}
