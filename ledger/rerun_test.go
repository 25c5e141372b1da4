package ledger

import (
	"crypto/sha256"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

// receiveBytes records body as a file of brand with p's other fields.
func (b *testBundle) receiveBytes(l *Ledger, brand, body string, p ReceiveParams) (Received, error) {
	b.t.Helper()
	sum := sha256.Sum256([]byte(body))
	p.Brand, p.Size, p.SHA256, p.Body = brand, int64(len(body)), sum[:], strings.NewReader(body)
	if p.Source == "" {
		p.Source = "drop"
	}
	if p.Name == "" {
		p.Name = "returns.csv"
	}
	return l.Receive(b.ctx, p)
}

func (b *testBundle) mustReceive(l *Ledger, brand, body string, p ReceiveParams) int64 {
	b.t.Helper()
	r, err := b.receiveBytes(l, brand, body, p)
	if err != nil {
		b.t.Fatal(err)
	}
	return r.FileID
}

// applyAt applies update rows at the given lines to the received file.
func (b *testBundle) applyAt(l *Ledger, file int64, rows map[int]processors.ActionUpdate) Summary {
	b.t.Helper()
	var list []processors.ActionUpdate
	for _, line := range slices.Sorted(maps.Keys(rows)) {
		u := rows[line]
		u.Line = line
		list = append(list, u)
	}
	sum, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: file, Brand: "acme", Actor: "test"}, iter(list))
	if err != nil {
		b.t.Fatal(err)
	}
	return sum
}

func wantRefused(t *testing.T, err error, says string) {
	t.Helper()
	var r *RefusedError
	if !errors.As(err, &r) || !strings.Contains(r.Error(), says) {
		t.Fatalf("error %v; want a refusal saying %q", err, says)
	}
}

func (b *testBundle) file(l *Ledger, id int64) ReceivedFile {
	b.t.Helper()
	f, err := l.ReceivedFile(b.ctx, id)
	if err != nil {
		b.t.Fatal(err)
	}
	return f
}

func TestReprocess(t *testing.T) {
	t.Parallel()

	// quarantined is a file of acme quarantined as it was applied.
	quarantined := func(b *testBundle, l *Ledger, body string) int64 {
		b.t.Helper()
		id := b.mustReceive(l, "acme", body, ReceiveParams{Reply: Reply{Name: "returns.csv", To: "ops@acme.example", InReplyTo: "m1@acme.example"}})
		if _, err := l.Quarantine(b.ctx, id, outcome.MissingColumn, "no Reason column"); err != nil {
			b.t.Fatal(err)
		}
		return id
	}

	t.Run("AQuarantinedFileIsReceivedAgainLinkedWithWhoAskedItsReplyAndAnAuditEntry", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := quarantined(b, l, "Bestellnummer;Grund\n")
		again, err := b.receiveBytes(l, "acme", "Bestellnummer;Grund\n", ReceiveParams{Reply: b.file(l, orig).Reply,
			Rerun: &Rerun{Of: orig, Actor: "web:alice"}})
		if err != nil || again.Status != outcome.Received || again.FileID == orig {
			t.Fatalf("received %+v, %v", again, err)
		}
		f := b.file(l, again.FileID)
		if f.ReprocessOf != orig || f.RetryOf != 0 || f.Actor != "web:alice" || f.Reply.To != "ops@acme.example" ||
			f.Reply.InReplyTo != "m1@acme.example" || !f.BytesKept {
			t.Errorf("the new file: %+v", f)
		}
		audit, err := l.FileAudit(b.ctx, orig)
		if err != nil || len(audit) != 1 || audit[0].Actor != "web:alice" || audit[0].Action != AuditReprocess ||
			audit[0].Brand != "acme" || audit[0].Detail["new_file_id"] != float64(again.FileID) {
			t.Errorf("audit %+v, %v", audit, err)
		}
		reruns, err := l.Reruns(b.ctx, orig)
		if err != nil || len(reruns) != 1 || reruns[0].ID != again.FileID {
			t.Errorf("reruns %+v, %v", reruns, err)
		}
	})

	t.Run("OnlyAQuarantinedFileWhoseBytesWereKeptAndNotRefusedByItsSourceIsReprocessed", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		waiting := b.mustReceive(l, "acme", "waiting", ReceiveParams{})
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: waiting, Actor: "t"}), "not applied yet")

		b.importActions(l, "acme", sale(1, "100"))
		done := b.mustReceive(l, "acme", "done", ReceiveParams{})
		b.applyAt(l, done, map[int]processors.ActionUpdate{2: reverse(1)})
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: done, Actor: "t"}), "COMPLETED, not QUARANTINED; to run its rejected rows again, retry them")

		r, err := l.Receive(b.ctx, ReceiveParams{Brand: "acme", Source: "drop", Name: "huge.csv", Size: 1 << 40, SHA256: []byte{},
			Refusal: &Refusal{Code: outcome.FileTooLarge, Reason: "over the limit"}})
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: r.FileID, Actor: "t"}), "its bytes were not kept (FILE_TOO_LARGE)")

		for _, refusal := range []Refusal{
			{Code: outcome.NoAttachment, Reason: "no data file", BySource: true},
			{Code: outcome.SenderNotAllowed, Reason: "not allowed"},
		} {
			mail := b.mustReceive(l, "acme", "From: x\r\n\r\n"+string(refusal.Code), ReceiveParams{Name: "message-7.eml", Refusal: &refusal})
			wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: mail, Actor: "t"}), "its source refused it ("+string(refusal.Code)+")")
		}
		if err := l.CheckRerun(b.ctx, Rerun{Of: 999999, Actor: "t"}); !errors.Is(err, ErrNoFile) {
			t.Errorf("a file that does not exist: %v", err)
		}
	})

	t.Run("AFileIsReprocessedOnceUnlessItsReprocessWasQuarantinedAgain", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := quarantined(b, l, "bad header")
		first := b.mustReceive(l, "acme", "bad header", ReceiveParams{Rerun: &Rerun{Of: orig, Actor: "t"}})
		_, err := b.receiveBytes(l, "acme", "bad header", ReceiveParams{Rerun: &Rerun{Of: orig, Actor: "t"}})
		wantRefused(t, err, "being reprocessed as file")
		if _, err := l.Quarantine(b.ctx, first, outcome.MissingColumn, "still no Reason column"); err != nil {
			t.Fatal(err)
		}
		second := b.mustReceive(l, "acme", "bad header", ReceiveParams{Rerun: &Rerun{Of: orig, Actor: "t"}})
		b.importActions(l, "acme", sale(1, "100"))
		b.applyAt(l, second, map[int]processors.ActionUpdate{2: reverse(1)})
		_, err = b.receiveBytes(l, "acme", "bad header", ReceiveParams{Rerun: &Rerun{Of: orig, Actor: "t"}})
		wantRefused(t, err, "it was reprocessed as file")
		if n, _ := l.Reruns(b.ctx, orig); len(n) != 2 {
			t.Errorf("%d reruns; want 2", len(n))
		}
	})

	t.Run("BytesAppliedAsAnotherFileAreNotReprocessed", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := quarantined(b, l, "the same bytes")
		b.importActions(l, "acme", sale(1, "100"))
		sentAgain := b.mustReceive(l, "acme", "the same bytes", ReceiveParams{})
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: orig, Actor: "t"}), "the same bytes wait to be applied as file")
		b.applyAt(l, sentAgain, map[int]processors.ActionUpdate{2: reverse(1)})
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: orig, Actor: "t"}), "the same bytes were applied as file")
	})

	t.Run("ARetryQuarantinedIsNotReprocessed", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.importActions(l, "acme", sale(1, "100"))
		orig := b.mustReceive(l, "acme", "orig", ReceiveParams{})
		b.applyAt(l, orig, map[int]processors.ActionUpdate{2: reverse(7)})
		retry := b.mustReceive(l, "acme", "retry", ReceiveParams{Rerun: &Rerun{Of: orig, Retry: true, Kind: "action-updates", Actor: "t"}})
		l.Quarantine(b.ctx, retry, outcome.Undecodable, "the config changed")
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: retry, Actor: "t"}), "retry file")
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()

	// original is a completed file of acme: line 2 applied, 3 and 4
	// ACTION_NOT_FOUND, 5 ACTION_REVERSED (rejected for good).
	original := func(b *testBundle, l *Ledger) int64 {
		b.t.Helper()
		b.importActions(l, "acme", sale(1, "100"), sale(5, "100"))
		b.apply(l, "acme", reverse(5))
		id := b.mustReceive(l, "acme", "original", ReceiveParams{})
		b.applyAt(l, id, map[int]processors.ActionUpdate{2: reverse(1), 3: reverse(2), 4: reverse(3), 5: modify(5, "10")})
		return id
	}
	retry := func(b *testBundle, l *Ledger, of int64, body string) (Received, error) {
		b.t.Helper()
		lines, seen, err := l.RetryRows(b.ctx, of)
		if err != nil {
			b.t.Fatal(err)
		}
		return b.receiveBytes(l, "acme", body, ReceiveParams{Name: "returns_retry.csv",
			Rerun: &Rerun{Of: of, Retry: true, Kind: "action-updates", Actor: "cli:bob", Seen: seen, Rows: len(lines)}})
	}
	wantLines := func(b *testBundle, l *Ledger, of int64, want ...int) {
		b.t.Helper()
		lines, _, err := l.RetryRows(b.ctx, of)
		if err != nil || !slices.Equal(lines, want) {
			b.t.Fatalf("rows to retry %v (%v); want %v", lines, err, want)
		}
	}

	t.Run("TheRowsRejectedForWantOfAnActionOrInquiryAreRetried", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		wantLines(b, l, original(b, l), 3, 4)
	})

	t.Run("ARowARetryAppliedIsNeverRetriedAgainNorOneItRejectedOtherwise", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := original(b, l)
		b.importActions(l, "acme", sale(2, "100"))
		first, err := retry(b, l, orig, "rows 3 and 4")
		if err != nil {
			t.Fatal(err)
		}
		if f := b.file(l, first.FileID); f.RetryOf != orig || f.Kind != "action-updates" || f.Actor != "cli:bob" {
			t.Errorf("the retry: %+v", f)
		}
		b.applyAt(l, first.FileID, map[int]processors.ActionUpdate{3: reverse(2), 4: reverse(3)})
		wantLines(b, l, orig, 4)

		// Action 3 comes, but a retry that rejected row 4 otherwise makes it final.
		b.importActions(l, "acme", processors.ActionRecord{ActionID: 3, TrackerID: 1003, Oid: "C-3", Amount: amt("0.10")})
		second, err := retry(b, l, orig, "row 4")
		if err != nil {
			t.Fatal(err)
		}
		sum := b.applyAt(l, second.FileID, map[int]processors.ActionUpdate{4: reverse(3)})
		if sum.ByCode[outcome.CPCNotReversible] != 1 {
			t.Fatalf("summary %+v", sum)
		}
		wantLines(b, l, orig)
		if n := b.eventCount(l, 2); n != 2 {
			t.Errorf("action 2 has %d events; want its import and one reversal", n)
		}
	})

	t.Run("OneRetryWaitsAtATimeAndOneBuiltWhileAnotherWasMadeIsRefused", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := original(b, l)
		_, seen, _ := l.RetryRows(b.ctx, orig)
		first, err := retry(b, l, orig, "first")
		if err != nil {
			t.Fatal(err)
		}
		_, err = retry(b, l, orig, "second")
		wantRefused(t, err, "waits to be applied")
		b.applyAt(l, first.FileID, map[int]processors.ActionUpdate{3: reverse(2), 4: reverse(3)})
		_, err = b.receiveBytes(l, "acme", "built before the first was made", ReceiveParams{
			Rerun: &Rerun{Of: orig, Retry: true, Kind: "action-updates", Actor: "t", Seen: seen}})
		wantRefused(t, err, "while this one was built")
	})

	t.Run("ARetryBuiltWhileAnotherWaitedIsRefusedEvenOnceThatOneIsApplied", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := original(b, l)
		b.importActions(l, "acme", sale(2, "100"))
		first, err := retry(b, l, orig, "first")
		if err != nil {
			t.Fatal(err)
		}
		lines, seen, _ := l.RetryRows(b.ctx, orig) // first waits: its rows are still among these
		b.applyAt(l, first.FileID, map[int]processors.ActionUpdate{3: reverse(2), 4: reverse(3)})
		_, err = b.receiveBytes(l, "acme", "built while the first waited", ReceiveParams{
			Rerun: &Rerun{Of: orig, Retry: true, Kind: "action-updates", Actor: "t", Seen: seen, Rows: len(lines)}})
		wantRefused(t, err, "while this one was built")
		if n := b.eventCount(l, 2); n != 2 {
			t.Errorf("action 2 has %d events; want its import and one reversal", n)
		}
	})

	t.Run("TwoRetriesOfTheSameRowsAreTheSameBytesAndBothApply", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := original(b, l)
		for range 2 {
			r, err := retry(b, l, orig, "ActionId,Reason\n\n3,RETURNED\n4,RETURNED\n")
			if err != nil || r.Status != outcome.Received {
				t.Fatalf("retry: %+v, %v", r, err)
			}
			if sum := b.applyAt(l, r.FileID, map[int]processors.ActionUpdate{3: reverse(2), 4: reverse(3)}); sum.Status != outcome.Completed {
				t.Fatalf("summary %+v", sum)
			}
		}
		// The brand sending those bytes is no duplicate of a retry.
		r, err := b.receiveBytes(l, "acme", "ActionId,Reason\n\n3,RETURNED\n4,RETURNED\n", ReceiveParams{})
		if err != nil || r.Status != outcome.Received {
			t.Errorf("the brand's file: %+v, %v", r, err)
		}
	})

	t.Run("OnlyACompletedBrandFileIsRetriedAndARetrysRetryIsRefused", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		orig := original(b, l)
		first, _ := retry(b, l, orig, "first")
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: first.FileID, Retry: true, Actor: "t"}), "it is a retry itself: retry file")
		q := b.mustReceive(l, "acme", "quarantined", ReceiveParams{})
		l.Quarantine(b.ctx, q, outcome.UnknownKind, "?")
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: q, Retry: true, Actor: "t"}), "QUARANTINED, not COMPLETED")
		imported := b.importActions(l, "acme", sale(9, "1"))
		wantRefused(t, l.CheckRerun(b.ctx, Rerun{Of: imported.FileID, Retry: true, Actor: "t"}), "only a brand's action updates")
	})
}

func TestReplyIsKeptByteForByte(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	want := Reply{Name: "Retouren M\xe4rz.csv", To: "r\xfcckgabe@acme.example", InReplyTo: "a\\b@acme.example",
		NotTaken: []string{"logo.png (inline image)"}}
	id := b.mustReceive(l, "acme", "x", ReceiveParams{Reply: want})
	got := b.file(l, id).Reply
	if got.Name != want.Name || got.To != want.To || got.InReplyTo != want.InReplyTo || !slices.Equal(got.NotTaken, want.NotTaken) {
		t.Errorf("reply %+v; want %+v", got, want)
	}
	if none := b.file(l, b.mustReceive(l, "acme", "y", ReceiveParams{})).Reply; !none.IsZero() {
		t.Errorf("a file without a reply has %+v", none)
	}
}

func TestWaitingFilesIncludeRerunsOfTheCommandLinesFiles(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	b.importActions(l, "acme", sale(1, "100"))
	cli := b.mustReceive(l, "acme", "given to apply", ReceiveParams{Source: "cli"})
	b.applyAt(l, cli, map[int]processors.ActionUpdate{2: reverse(2)})
	lines, seen, _ := l.RetryRows(b.ctx, cli)
	retry := b.mustReceive(l, "acme", "the retry", ReceiveParams{Source: "cli",
		Rerun: &Rerun{Of: cli, Retry: true, Kind: "action-updates", Actor: "cli:bob", Seen: seen, Rows: len(lines)}})
	other := b.mustReceive(l, "acme", "another given to apply", ReceiveParams{Source: "cli"})
	waiting, err := l.WaitingFiles(b.ctx, other)
	if err != nil || len(waiting) != 1 || waiting[0].ID != retry {
		t.Errorf("waiting %+v, %v; want the retry only", waiting, err)
	}
}

func TestListFiles(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	a := b.mustReceive(l, "acme", "a", ReceiveParams{})
	g := b.mustReceive(l, "globex", "g", ReceiveParams{})
	q := b.mustReceive(l, "acme", "q", ReceiveParams{})
	l.Quarantine(b.ctx, q, outcome.UnknownKind, "?")
	ids := func(q FileQuery) []int64 {
		t.Helper()
		files, err := l.ListFiles(b.ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, f := range files {
			out = append(out, f.ID)
		}
		return out
	}
	for name, c := range map[string]struct {
		q    FileQuery
		want []int64
	}{
		"AllNewestFirst":  {FileQuery{}, []int64{q, g, a}},
		"ABrand":          {FileQuery{Brand: "acme"}, []int64{q, a}},
		"AStatus":         {FileQuery{Status: outcome.Received}, []int64{g, a}},
		"ALimit":          {FileQuery{Limit: 1}, []int64{q}},
		"TheNextPage":     {FileQuery{Before: g}, []int64{a}},
		"SinceATime":      {FileQuery{Since: time.Now().Add(time.Hour)}, nil},
		"SinceAnHourAgo":  {FileQuery{Since: time.Now().Add(-time.Hour), Brand: "globex"}, []int64{g}},
		"AnUnknownBrand":  {FileQuery{Brand: "nobody"}, nil},
		"BrandAndStatus":  {FileQuery{Brand: "acme", Status: outcome.Quarantined}, []int64{q}},
		"AStatusNoneHave": {FileQuery{Status: outcome.DuplicateFile}, nil},
	} {
		if got := ids(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v; want %v", name, got, c.want)
		}
	}
}

func TestTheAuditLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	l, b := setup(t)
	id := b.mustReceive(l, "acme", "a", ReceiveParams{})
	if err := l.Audit(b.ctx, AuditEntry{Actor: "web:carol", Action: "web.download", Brand: "acme", FileID: id,
		Detail: map[string]any{"what": "result"}}); err != nil {
		t.Fatal(err)
	}
	entries, err := l.FileAudit(b.ctx, id)
	if err != nil || len(entries) != 1 || entries[0].Actor != "web:carol" || entries[0].Detail["what"] != "result" || entries[0].At.IsZero() {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	for _, sql := range []string{"UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"} {
		if _, err := l.pool.Exec(b.ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", sql, err)
		}
	}
}
