package pipeline_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// receiveFrom keeps a file as a source's poll would, and returns it.
func (b *testBundle) receiveFrom(t *testing.T, p *pipeline.Pipeline, name string, data []byte) ledger.ReceivedFile {
	t.Helper()
	ctx := context.Background()
	res, err := p.Receive(ctx, pipeline.ReceiveParams{Brand: "acme", Source: "drop", Name: name, Path: b.write(t, name, data),
		Split: true, Reply: ledger.Reply{Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.ledger.ReceivedFile(ctx, res.FileID)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// applyReceived applies a received file under format and returns it as it ended.
func (b *testBundle) applyReceived(t *testing.T, p *pipeline.Pipeline, id int64, format processors.Format) ledger.ReceivedFile {
	t.Helper()
	ctx := context.Background()
	f, err := b.ledger.ReceivedFile(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ApplyReceived(ctx, f, pipeline.ApplyParams{Format: format, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if f, err = b.ledger.ReceivedFile(ctx, id); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRetryRejected(t *testing.T) {
	t.Parallel()

	t.Run("TheRetryIsTheOriginalsHeaderAndRowsAtTheirLinesInItsEncodingAndDelimiter", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		b.format.Encoding = "windows-1252"
		text := "ActionId;Reason;Note\r\n5001;RETURNED;Größe\r\n\r\n77001;RETURNED;\"Straße; zwei\"\r\n5002;RETURNED;x\r\n77002;RETURNED;Maß\r\n"
		latin1, _ := charmap.Windows1252.NewEncoder().String(text)
		orig := b.receiveFrom(t, p, "retouren.csv", []byte(latin1))
		if f := b.applyReceived(t, p, orig.ID, b.format); f.Status != outcome.Completed || f.Rejected != 2 {
			t.Fatalf("original: %+v", f)
		}

		r, err := p.RetryRejected(ctx, pipeline.RetryParams{File: orig, Format: b.format, Actor: "web:alice"})
		if err != nil || r.Rows != 2 || r.Status != outcome.Received {
			t.Fatalf("retry: %+v, %v", r, err)
		}
		var kept bytes.Buffer
		if err := b.ledger.FileBytes(ctx, r.FileID, &kept); err != nil {
			t.Fatal(err)
		}
		// The header on line 1, the rows on lines 4 and 6, blank lines between.
		want, _ := charmap.Windows1252.NewEncoder().String("ActionId;Reason;Note\n\n\n77001;RETURNED;\"Straße; zwei\"\n\n77002;RETURNED;Maß\n")
		if kept.String() != want {
			t.Errorf("the retry's bytes:\n%q\nwant\n%q", kept.String(), want)
		}
		retry := b.applyReceived(t, p, r.FileID, b.format)
		if retry.Name != "retouren_retry.csv" || retry.RetryOf != orig.ID || retry.Kind != "action-updates" || retry.Rejected != 2 {
			t.Errorf("the retry: %+v", retry)
		}
		result := b.result(t)
		if _, err := p.WriteResult(ctx, retry, b.format, result); err != nil {
			t.Fatal(err)
		}
		got, _ := charmap.Windows1252.NewDecoder().String(result.String())
		if !strings.Contains(got, "77001;RETURNED;\"Straße; zwei\";4;REJECTED;ACTION_NOT_FOUND;") ||
			!strings.Contains(got, "77002;RETURNED;Maß;6;REJECTED;ACTION_NOT_FOUND;") || strings.Contains(got, "5001") {
			t.Errorf("the retry's result, in windows-1252 with semicolons, at the original's lines:\n%s", got)
		}
	})

	t.Run("AFileWhoseBytesNoLongerReadUnderTheBrandsFormatIsRefused", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		orig := b.receiveFrom(t, p, "r.csv", []byte("ActionId,Reason\n77001,RETURNED\n"))
		b.applyReceived(t, p, orig.ID, b.format)
		_, err := p.RetryRejected(context.Background(), pipeline.RetryParams{File: orig,
			Format: processors.Format{Delimiter: "semicolon"}, Actor: "t"})
		var refused *ledger.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(err.Error(), "do not read under the brand's file_format") {
			t.Errorf("error %v", err)
		}
	})
}

func TestReprocess(t *testing.T) {
	t.Parallel()

	t.Run("AnArchiveQuarantinedAsUnsafeIsSplitAgainOnceTheLimitIsRaised", func(t *testing.T) {
		t.Parallel()
		p, b := setup(t)
		ctx := context.Background()
		data := zipOf(t, map[string]string{"a.csv": "ActionId,Reason\n5001,RETURNED\n", "b.csv": "ActionId,Reason\n5002,RETURNED\n"})
		p.Limits.MaxArchiveEntries = 1
		orig := b.receiveFrom(t, p, "batch.zip", data)
		if orig.Status != outcome.Quarantined || orig.Code != outcome.UnsafeArchive {
			t.Fatalf("original: %+v", orig)
		}
		p.Limits.MaxArchiveEntries = 0
		res, err := p.Reprocess(ctx, pipeline.ReprocessParams{File: orig, Actor: "cli:ops"})
		if err != nil || res.Status != outcome.Completed || len(res.Children) != 2 {
			t.Fatalf("reprocess: %+v, %v", res, err)
		}
		archive, _ := b.ledger.ReceivedFile(ctx, res.FileID)
		if archive.ReprocessOf != orig.ID || archive.Kind != ledger.KindArchive || archive.Actor != "cli:ops" {
			t.Errorf("the reprocess: %+v", archive)
		}
		for _, c := range res.Children {
			child := b.applyReceived(t, p, c.FileID, b.format)
			if child.Status != outcome.Completed || child.Applied != 1 || child.Parent != archive.ID || child.Actor != "cli:ops" ||
				child.ReprocessOf != 0 || child.Reply.Name != "batch.zip" {
				t.Errorf("a file of the archive: %+v", child)
			}
		}
	})
}

// zipOf is a zip holding files by name.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		f, err := w.Create(name)
		if err == nil {
			_, err = f.Write([]byte(files[name]))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
