package report

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

type testBundle struct {
	t   *testing.T
	ctx context.Context
	l   *ledger.Ledger
}

// setup gives a test a migrated ledger with acme (USD, New York) and globex
// (EUR, Berlin).
func setup(t *testing.T) (*ledger.Ledger, *testBundle) {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	thirty := 30
	err = l.SyncBrands(ctx, []ledger.Brand{
		{Slug: "acme", Name: "ACME Outdoor", Currency: "USD", Timezone: "America/New_York", LockingDays: &thirty,
			PayoutDelayDays: 15, InquiriesAccept: true, Trackers: []ledger.Tracker{{ID: 1001, Name: "Online Sale", Kind: "SALE", PayoutPercent: "8.5"}}},
		{Slug: "globex", Name: "Globex Versand", Currency: "EUR", Timezone: "Europe/Berlin", PayoutDelayDays: 10,
			Trackers: []ledger.Tracker{{ID: 2001, Name: "Bestellung", Kind: "SALE", PayoutPercent: "10"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, &testBundle{t: t, ctx: ctx, l: l}
}

var fileSeq atomic.Int64

func (b *testBundle) receive(brand, source, name string) int64 {
	b.t.Helper()
	body := fmt.Sprintf("file %d of %s", fileSeq.Add(1), b.t.Name())
	sum := sha256.Sum256([]byte(body))
	r, err := b.l.Receive(b.ctx, ledger.ReceiveParams{Brand: brand, Source: source, Name: name,
		Size: int64(len(body)), SHA256: sum[:], Body: strings.NewReader(body)})
	if err != nil {
		b.t.Fatal(err)
	}
	return r.FileID
}

func iter[T any](rows []T) func() (T, error) {
	i := 0
	return func() (T, error) {
		var zero T
		if i == len(rows) {
			return zero, io.EOF
		}
		i++
		return rows[i-1], nil
	}
}

func amt(s string) money.Amount {
	a, err := money.Parse(s, false)
	if err != nil {
		panic(err)
	}
	return a
}

// load imports actions of a brand (lines from 2) and returns the file's id.
func (b *testBundle) load(brand string, recs ...processors.ActionRecord) int64 {
	b.t.Helper()
	for i := range recs {
		recs[i].Line = i + 2
		recs[i].PartnerID = cmpOr(recs[i].PartnerID, 301)
		if recs[i].EventDate.IsZero() {
			recs[i].EventDate = time.Now().Add(-48 * time.Hour)
		}
	}
	file := b.receive(brand, "cli", "actions.csv")
	if _, err := b.l.ImportActions(b.ctx, ledger.ApplyParams{FileID: file, Brand: brand, Actor: "test"}, iter(recs)); err != nil {
		b.t.Fatal(err)
	}
	return file
}

func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// update applies update rows (lines from 2) received from source and returns the file's id.
func (b *testBundle) update(brand, source string, rows ...processors.ActionUpdate) int64 {
	b.t.Helper()
	for i := range rows {
		rows[i].Line = i + 2
	}
	file := b.receive(brand, source, "returns.csv")
	if _, err := b.l.ApplyActionUpdates(b.ctx, ledger.ApplyParams{FileID: file, Brand: brand, Actor: "test"}, iter(rows)); err != nil {
		b.t.Fatal(err)
	}
	return file
}

// moveFile sets when a file was received.
func (b *testBundle) moveFile(file int64, at time.Time) {
	b.t.Helper()
	if _, err := b.l.Pool().Exec(b.ctx, "UPDATE received_files SET received_at = $2 WHERE id = $1", file, at); err != nil {
		b.t.Fatal(err)
	}
}

func (b *testBundle) build(p Params) *Report {
	b.t.Helper()
	r, err := Build(b.ctx, b.l, p)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

func sale(id int64, amount string) processors.ActionRecord {
	return processors.ActionRecord{ActionID: id, TrackerID: 1001, Oid: fmt.Sprintf("O-%d", id), Amount: amt(amount), Currency: "USD"}
}

func globexSale(id int64, amount string) processors.ActionRecord {
	return processors.ActionRecord{ActionID: id, TrackerID: 2001, Oid: fmt.Sprintf("G-%d", id), Amount: amt(amount), Currency: "EUR"}
}

func reverse(id int64) processors.ActionUpdate {
	return processors.ActionUpdate{ActionID: id, Operation: processors.Reverse, Reason: "ITEM_RETURNED"}
}

func modify(id int64, amount string) processors.ActionUpdate {
	return processors.ActionUpdate{ActionID: id, Operation: processors.Modify, Amount: amt(amount), HasAmount: true, Reason: "ORDER_UPDATE"}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	today := DateOf(time.Now().UTC())

	t.Run("CountsEveryBrandsDayAndKeepsCurrenciesApartInTheTotals", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		b.load("acme", sale(5001, "100.00"), sale(5002, "200.00"))
		b.update("acme", "acme-sftp", modify(5001, "80.00"), reverse(5002), reverse(9999))
		b.load("globex", globexSale(7001, "50.00"))
		b.update("globex", "drop", reverse(7001))
		bad := b.receive("globex", "drop", "gutschriften.csv")
		if _, err := b.l.Quarantine(b.ctx, bad, outcome.UnknownKind, "no known kind has these columns"); err != nil {
			t.Fatal(err)
		}

		r := b.build(Params{Day: today})

		acme, globex := r.Brands[0], r.Brands[1]
		if acme.Brand != "acme" || globex.Brand != "globex" || len(r.Brands) != 2 {
			t.Fatalf("brands %+v", r.Brands)
		}
		wantFiles := FileCounts{Received: 5, Completed: 4, Quarantined: 1,
			QuarantinedByCode: []CodeCount{{outcome.UnknownKind, 1}}}
		if !equalFiles(r.Totals.Files, wantFiles) || acme.Files.Received != 2 || globex.Files.Quarantined != 1 {
			t.Errorf("files: totals %+v, acme %+v, globex %+v", r.Totals.Files, acme.Files, globex.Files)
		}
		if got := r.Totals.Rows; got.Total != 7 || got.Applied != 6 || got.Rejected != 1 ||
			!slices.Equal(got.ByCode, []OutcomeCount{{outcome.Rejected, outcome.ActionNotFound, 1}}) {
			t.Errorf("rows: %+v", got)
		}
		wantAcme := []Change{
			{Currency: "USD", Operation: "CREATE", Rows: 2, SaleAmount: amt("300.00"), Payout: amt("25.50")},
			{Currency: "USD", Operation: "MODIFY", Rows: 1, SaleAmount: -amt("20.00"), Payout: -amt("1.70")},
			{Currency: "USD", Operation: "REVERSE", Rows: 1, SaleAmount: -amt("200.00"), Payout: -amt("17.00")},
		}
		if !slices.Equal(acme.Changes, wantAcme) {
			t.Errorf("acme's changes:\n%+v\nwant\n%+v", acme.Changes, wantAcme)
		}
		wantTotals := append(
			[]Change{{Currency: "EUR", Operation: "CREATE", Rows: 1, SaleAmount: amt("50.00"), Payout: amt("5.00")},
				{Currency: "EUR", Operation: "REVERSE", Rows: 1, SaleAmount: -amt("50.00"), Payout: -amt("5.00")}},
			wantAcme...)
		if !slices.Equal(r.Totals.Changes, wantTotals) {
			t.Errorf("total changes:\n%+v\nwant\n%+v", r.Totals.Changes, wantTotals)
		}
		if len(r.Files) != 5 || r.Files[4].Status != outcome.Quarantined || r.Files[4].Reason != "no known kind has these columns" {
			t.Errorf("files: %+v", r.Files)
		}
	})

	t.Run("ADayIsTheCalendarDayOfTheReportsZone", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		late := b.load("acme", sale(5001, "100.00"))
		// 23:30 UTC on Nov 23 is 00:30 on Nov 24 in Berlin.
		b.moveFile(late, time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC))
		berlin := mustZone("Europe/Berlin")

		utc23 := b.build(Params{Day: Date{2026, 11, 23}})
		berlin23 := b.build(Params{Day: Date{2026, 11, 23}, Location: berlin})
		berlin24 := b.build(Params{Day: Date{2026, 11, 24}, Location: berlin})

		if utc23.Totals.Files.Received != 1 || berlin23.Totals.Files.Received != 0 || berlin24.Totals.Files.Received != 1 {
			t.Errorf("received: UTC Nov 23 %d, Berlin Nov 23 %d, Berlin Nov 24 %d; want 1, 0, 1",
				utc23.Totals.Files.Received, berlin23.Totals.Files.Received, berlin24.Totals.Files.Received)
		}
		if !berlin24.Start.Equal(time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC)) || berlin24.End.Sub(berlin24.Start) != 24*time.Hour {
			t.Errorf("Berlin's Nov 24: %s to %s", berlin24.Start, berlin24.End)
		}
		if got := berlin24.Files[0].ReceivedAt; got.Location() != berlin || got.Hour() != 0 || got.Minute() != 30 {
			t.Errorf("received at %s, want 00:30 in Berlin", got)
		}
	})

	t.Run("TheTrendIsTheFourteenDaysEndingWithTheDay", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		old := b.load("acme", sale(5001, "100.00"))
		b.moveFile(old, time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC))
		older := b.load("acme", sale(5002, "100.00"))
		b.moveFile(older, time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC))

		r := b.build(Params{Day: Date{2026, 11, 23}})

		if len(r.Trend) != TrendDays || r.Trend[0].Day != (Date{2026, 11, 10}) || r.Trend[13].Day != (Date{2026, 11, 23}) {
			t.Fatalf("trend days: %+v", r.Trend)
		}
		if r.Trend[0].Files != 1 || r.Trend[0].Applied != 1 {
			t.Errorf("Nov 10: %+v (Nov 9 is outside the trend)", r.Trend[0])
		}
	})

	t.Run("LocksPayoutsAndBalancesAreReported", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		b.load("acme", processors.ActionRecord{ActionID: 5001, TrackerID: 1001, Oid: "O-1", Amount: amt("100.00"),
			Currency: "USD", EventDate: time.Now().AddDate(0, -3, 0)})
		if _, err := b.l.RunLifecycle(b.ctx, time.Now()); err != nil {
			t.Fatal(err)
		}

		r := b.build(Params{Day: today})

		acme := r.Brands[0]
		if acme.Actions.Locked != 1 || acme.Actions.Paid != 1 ||
			!slices.Equal(acme.Actions.Payouts, []Amounts{{"USD", amt("8.50")}}) {
			t.Errorf("actions: %+v", acme.Actions)
		}
		if acme.Balance != -amt("8.50") || acme.DelayedPayouts != 1 || acme.DelayedAmount != amt("8.50") {
			t.Errorf("funds: %+v", acme)
		}
		if neg := r.NegativeBalances(); len(neg) != 1 || neg[0].Brand != "acme" {
			t.Errorf("negative balances: %+v", neg)
		}
	})

	t.Run("InquiriesAreCountedAndThePastDeadlineSlotIsLeftUnknown", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		now := time.Now()
		inq := func(id string, order time.Time) processors.Inquiry {
			return processors.Inquiry{InquiryID: id, PartnerID: 301, Oid: "ORD-" + id, TrackerID: 1001,
				TransactionDate: order, SaleAmount: amt("100.00"), HasSaleAmount: true,
				Type: processors.InquiryUntracked, SubmittedAt: order.Add(48 * time.Hour)}
		}
		rows := []processors.Inquiry{inq("1", now.Add(-72*time.Hour)), inq("2", now.AddDate(0, 0, -20))}
		for i := range rows {
			rows[i].Line = i + 2
		}
		file := b.receive("acme", "cli", "inquiries.csv")
		if _, err := b.l.ImportInquiries(b.ctx, ledger.ApplyParams{FileID: file, Brand: "acme", Actor: "test", At: now}, iter(rows)); err != nil {
			t.Fatal(err)
		}

		r := b.build(Params{Day: today, Now: now})

		q := r.Brands[0].Inquiries
		if q.Received != 2 || q.Open != 2 || !slices.Equal(q.OpenByAge, []int{1, 0, 1, 0}) || q.PastDeadline != nil {
			t.Errorf("inquiries: %+v", q)
		}
		if q.Oldest == nil || q.Oldest.InquiryID != "2" || q.Oldest.Age < 17*24*time.Hour || r.Totals.Inquiries.Oldest.InquiryID != "2" {
			t.Errorf("oldest: %+v", q.Oldest)
		}
		if len(r.Totals.Changes) != 0 {
			t.Errorf("an inquiry import changed actions: %+v", r.Totals.Changes)
		}
	})

	t.Run("ABrandsReportHoldsOnlyItAndTheSourcesThatServeIt", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		b.load("acme", sale(5001, "100.00"))
		b.load("globex", globexSale(7001, "50.00"))
		backoff := func(int) time.Duration { return time.Minute }
		for _, s := range []string{"acme-sftp", "globex-ftp", "returns-inbox"} {
			if _, err := b.l.RecordPollFailure(b.ctx, s, time.Now(), "dial: refused", backoff); err != nil {
				t.Fatal(err)
			}
		}
		sources := map[string][]string{"acme-sftp": {"acme"}, "globex-ftp": {"globex"}, "returns-inbox": {"acme", "globex"}}

		all := b.build(Params{Day: today, SourceBrands: sources})
		globex := b.build(Params{Day: today, Brand: "globex", SourceBrands: sources})
		blind := b.build(Params{Day: today, Brand: "globex"})

		if len(all.FailingSources) != 3 {
			t.Errorf("every brand's report: %+v", all.FailingSources)
		}
		if len(globex.Brands) != 1 || globex.Brands[0].Brand != "globex" || globex.Totals.Files.Received != 1 ||
			len(globex.Files) != 1 || globex.Brand != "globex" {
			t.Errorf("globex's report: brands %+v, files %+v", globex.Brands, globex.Files)
		}
		var names []string
		for _, s := range globex.FailingSources {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, []string{"globex-ftp", "returns-inbox"}) {
			t.Errorf("globex's failing sources: %q", names)
		}
		if len(blind.FailingSources) != 0 {
			t.Errorf("without knowing the sources' brands, a brand's report lists %+v", blind.FailingSources)
		}
	})

	t.Run("ParamsThatNameNoDayOrNoZoneAreRefused", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t)
		if _, err := Build(b.ctx, b.l, Params{}); !errors.Is(err, ErrNoDay) {
			t.Errorf("no day: %v", err)
		}
		if _, err := Build(b.ctx, b.l, Params{Day: today, Location: time.Local}); !errors.Is(err, ErrNamelessZone) {
			t.Errorf("time.Local: %v", err)
		}
		if _, err := Build(b.ctx, b.l, Params{Day: today, Brand: "initech"}); !errors.Is(err, ledger.ErrUnknownBrand) {
			t.Errorf("unknown brand: %v", err)
		}
	})
}

func equalFiles(a, b FileCounts) bool {
	return a.Received == b.Received && a.Completed == b.Completed && a.Duplicate == b.Duplicate &&
		a.Quarantined == b.Quarantined && a.Waiting == b.Waiting && slices.Equal(a.QuarantinedByCode, b.QuarantinedByCode)
}

func TestDate(t *testing.T) {
	d, err := ParseDate("2026-03-29")
	if err != nil || d != (Date{2026, 3, 29}) || d.String() != "2026-03-29" {
		t.Fatalf("ParseDate: %v, %v", d, err)
	}
	if _, err := ParseDate("29.03.2026"); err == nil {
		t.Error("a date not written YYYY-MM-DD was read")
	}
	berlin := mustZone("Europe/Berlin")
	// The clocks go forward on Mar 29, 2026 in Berlin: that day has 23 hours.
	from, to := d.span(berlin)
	if to.Sub(from) != 23*time.Hour {
		t.Errorf("Mar 29 in Berlin is %s long", to.Sub(from))
	}
	if got := d.AddDays(3); got != (Date{2026, 4, 1}) {
		t.Errorf("AddDays(3) = %s", got)
	}
	if got := Yesterday(time.Date(2026, 1, 1, 0, 30, 0, 0, berlin), berlin); got != (Date{2025, 12, 31}) {
		t.Errorf("yesterday at 00:30 on Jan 1 in Berlin: %s", got)
	}
	if got := Yesterday(time.Date(2026, 1, 1, 0, 30, 0, 0, berlin), time.UTC); got != (Date{2025, 12, 30}) {
		t.Errorf("the same moment's yesterday in UTC: %s", got)
	}
	if !(Date{2025, 12, 31}).Before(Date{2026, 1, 1}) || (Date{2026, 1, 1}).Before(Date{2026, 1, 1}) {
		t.Error("Before")
	}
}

func TestSourceBrandsAreASourcesBrandOrItsRoutesBrands(t *testing.T) {
	cfg := &config.Config{Sources: []config.Source{
		{Name: "drop", Brand: "acme", Type: config.LocalDir},
		{Name: "inbox", Type: config.IMAP, Routes: []config.Route{
			{Recipient: "a@x.example", Brand: "acme"}, {Recipient: "g@x.example", Brand: "globex"}, {Recipient: "a2@x.example", Brand: "acme"}}},
	}}
	got := SourceBrands(cfg)
	if len(got) != 2 || !slices.Equal(got["drop"], []string{"acme"}) || !slices.Equal(got["inbox"], []string{"acme", "globex"}) {
		t.Errorf("%v", got)
	}
}
