package processors

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/returnsd/returnsd/outcome"
)

func split(t *testing.T, data []byte) (bool, map[string]string, error) {
	t.Helper()
	got := map[string]string{}
	ok, err := SplitArchive(bytes.NewReader(data), int64(len(data)), "batch.zip", Limits{}, func(e ArchiveEntry, body io.Reader) error {
		b, err := io.ReadAll(body)
		got[e.Path] = string(b)
		return err
	})
	return ok, got, err
}

func TestSplitArchive(t *testing.T) {
	t.Run("AZipOfSeveralDataFilesIsSplitLeavingWhatMacOSAndWindowsAdd", func(t *testing.T) {
		ok, got, err := split(t, zipBytes(t,
			zipEntry{"march/returns.csv", []byte("a\n1\n")},
			zipEntry{"__MACOSX/march/._returns.csv", []byte("junk")},
			zipEntry{"march/.DS_Store", []byte("junk")},
			zipEntry{"Thumbs.db", []byte("junk")},
			zipEntry{"april.xlsx", []byte("PK-ish")},
		))
		if err != nil || !ok {
			t.Fatalf("SplitArchive = %v, %v", ok, err)
		}
		if len(got) != 2 || got["march/returns.csv"] != "a\n1\n" || got["april.xlsx"] != "PK-ish" {
			t.Fatalf("entries %q", got)
		}
	})
	t.Run("AnythingElseIsLeftToOpen", func(t *testing.T) {
		for name, data := range map[string][]byte{
			"a zip of one data file": zipBytes(t, zipEntry{"a.csv", []byte(simpleCSV)}, zipEntry{".DS_Store", nil}),
			"a workbook":             workbook(t),
			"a text file":            []byte(simpleCSV),
			"a broken zip":           []byte("PK\x03\x04 cut"),
		} {
			ok, got, err := split(t, data)
			if ok || err != nil || len(got) != 0 {
				t.Errorf("%s: SplitArchive = %v, %v, %q", name, ok, err, got)
			}
		}
	})
	t.Run("AnUnsafeEntryNameRefusesTheArchive", func(t *testing.T) {
		_, got, err := split(t, zipBytes(t, zipEntry{"a.csv", nil}, zipEntry{"../../etc/cron.d/x.csv", nil}))
		var fe *FileError
		if !errors.As(err, &fe) || fe.Code != outcome.UnsafeArchive || len(got) != 0 {
			t.Fatalf("err %v, entries %q", err, got)
		}
	})
	t.Run("ADamagedEntryIsDamageNotAShorterFile", func(t *testing.T) {
		data := zipBytes(t, zipEntry{"a.csv", bytes.Repeat([]byte("1001,ITEM_RETURNED\n"), 500)}, zipEntry{"b.csv", []byte(simpleCSV)})
		i := bytes.Index(data, []byte("a.csv")) + 40 // inside a.csv's deflated bytes
		data[i] ^= 0xff
		_, _, err := split(t, data)
		var fe *FileError
		if !errors.As(err, &fe) || fe.Code != outcome.DamagedFile {
			t.Fatalf("err %v; want DAMAGED_FILE", err)
		}
	})
}
