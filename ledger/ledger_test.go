package ledger

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/money"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/processors"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type testBundle struct {
	ctx context.Context
	t   *testing.T
}

var fileSeq atomic.Int64

func setup(t *testing.T) (*Ledger, *testBundle) {
	t.Helper()
	ctx := context.Background()
	l, err := Open(ctx, pgtest.NewDatabase(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if err := l.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	brands := testBrands()
	if err := l.SyncBrands(ctx, brands); err != nil {
		t.Fatal(err)
	}
	return l, &testBundle{ctx: ctx, t: t}
}

// testBrands are the brands every test's ledger starts with; a test changes a
// copy and syncs it to change their terms (see syncBrands).
func testBrands() []Brand {
	thirty, ten := 30, 10
	return []Brand{
		{Slug: "acme", Name: "ACME Outdoor", Currency: "USD", Timezone: "America/New_York",
			LockingDays: &thirty, PayoutDelayDays: 15, Trackers: []Tracker{
				{ID: 1001, Name: "Online Sale", Kind: "SALE", PayoutPercent: "8.5"},
				{ID: 1002, Name: "Newsletter Lead", Kind: "LEAD", PayoutFixed: "4.00"},
				{ID: 1003, Name: "Paid Click", Kind: "CPC", PayoutFixed: "0.10"},
			},
			InquiriesAccept: true,
			Partners: []PartnerContract{
				// Partner 88 locks after 10 days, is paid 5 days later, and earns 12% on sales.
				{Partner: 88, LockingDays: &ten, PayoutDelayDays: 5, Payouts: []PartnerPayout{{Tracker: 1001, PayoutPercent: "12"}}},
				// Partner 89 has open-ended locking with acme.
				{Partner: 89, PayoutDelayDays: 15},
			}},
		{Slug: "globex", Name: "Globex", Currency: "EUR", Timezone: "Europe/Berlin",
			PayoutDelayDays: 10, Trackers: []Tracker{
				{ID: 2001, Name: "Sale", Kind: "SALE", PayoutPercent: "10"},
			}},
	}
}

// syncBrands syncs the test brands after change has altered them, as a
// command does with the config it runs with.
func (b *testBundle) syncBrands(l *Ledger, change func(acme, globex *Brand)) {
	b.t.Helper()
	brands := testBrands()
	change(&brands[0], &brands[1])
	if err := l.SyncBrands(b.ctx, brands); err != nil {
		b.t.Fatal(err)
	}
}

func amt(s string) money.Amount {
	a, err := money.Parse(s, false)
	if err != nil {
		panic(err)
	}
	return a
}

// iter turns a slice into a parser's Next.
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

// receive records a file with unique bytes and returns its id.
func (b *testBundle) receive(l *Ledger, brand string) int64 {
	b.t.Helper()
	body := fmt.Sprintf("file %d of %s", fileSeq.Add(1), b.t.Name())
	sum := sha256.Sum256([]byte(body))
	r, err := l.Receive(b.ctx, ReceiveParams{Brand: brand, Source: "test", Name: "f.csv",
		Size: int64(len(body)), SHA256: sum[:], Body: strings.NewReader(body)})
	if err != nil {
		b.t.Fatal(err)
	}
	return r.FileID
}

// importActions loads actions for a brand; lines are numbered from 2.
func (b *testBundle) importActions(l *Ledger, brand string, recs ...processors.ActionRecord) Summary {
	b.t.Helper()
	for i := range recs {
		recs[i].Line = i + 2
		if recs[i].Currency == "" {
			recs[i].Currency = "USD"
		}
		if recs[i].EventDate.IsZero() {
			recs[i].EventDate = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		}
		if recs[i].PartnerID == 0 {
			recs[i].PartnerID = 77
		}
	}
	sum, err := l.ImportActions(b.ctx, ApplyParams{FileID: b.receive(l, brand), Brand: brand, Actor: "test"}, iter(recs))
	if err != nil {
		b.t.Fatal(err)
	}
	return sum
}

// sale is an acme SALE action of the given amount.
func sale(id int64, amount string) processors.ActionRecord {
	return processors.ActionRecord{ActionID: id, TrackerID: 1001, Oid: fmt.Sprintf("O-%d", id), Amount: amt(amount)}
}

// apply applies update rows (lines numbered from 2) and returns the summary and each line's outcome.
func (b *testBundle) apply(l *Ledger, brand string, rows ...processors.ActionUpdate) (Summary, map[int]outcome.Row) {
	b.t.Helper()
	for i := range rows {
		rows[i].Line = i + 2
	}
	sum, err := l.ApplyActionUpdates(b.ctx, ApplyParams{FileID: b.receive(l, brand), Brand: brand, Actor: "test"}, iter(rows))
	if err != nil {
		b.t.Fatal(err)
	}
	return sum, b.outcomes(l, sum.FileID)
}

func (b *testBundle) outcomes(l *Ledger, file int64) map[int]outcome.Row {
	b.t.Helper()
	got := map[int]outcome.Row{}
	err := l.Outcomes(b.ctx, file, func(r outcome.Row) error {
		if _, dup := got[r.Line]; dup {
			b.t.Errorf("line %d has two outcomes", r.Line)
		}
		got[r.Line] = r
		return nil
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return got
}

type actionState struct {
	State          string
	Amount, Payout string
	Mods           int
}

func (b *testBundle) action(l *Ledger, id int64) actionState {
	b.t.Helper()
	var s actionState
	err := l.pool.QueryRow(b.ctx, "SELECT state, amount::text, payout::text, modification_count FROM actions WHERE id = $1", id).
		Scan(&s.State, &s.Amount, &s.Payout, &s.Mods)
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *testBundle) eventCount(l *Ledger, id int64) int {
	b.t.Helper()
	var n int
	if err := l.pool.QueryRow(b.ctx, "SELECT count(*) FROM ledger_events WHERE action_id = $1", id).Scan(&n); err != nil {
		b.t.Fatal(err)
	}
	return n
}

func (b *testBundle) exec(l *Ledger, sql string, args ...any) {
	b.t.Helper()
	if _, err := l.pool.Exec(b.ctx, sql, args...); err != nil {
		b.t.Fatal(err)
	}
}

func modify(id int64, amount string) processors.ActionUpdate {
	return processors.ActionUpdate{ActionID: id, Operation: processors.Modify, Amount: amt(amount), HasAmount: true, Reason: "ORDER_UPDATE"}
}

func reverse(id int64) processors.ActionUpdate {
	return processors.ActionUpdate{ActionID: id, Operation: processors.Reverse, Reason: "ITEM_RETURNED"}
}

func approve(id int64) processors.ActionUpdate {
	return processors.ActionUpdate{ActionID: id, Operation: processors.Approve, Reason: "APPROVED"}
}

func reset(id int64) processors.ActionUpdate {
	return processors.ActionUpdate{ActionID: id, Operation: processors.Reset, Reason: "RESET"}
}

func wantOutcome(t *testing.T, got outcome.Row, o outcome.Outcome, code outcome.Code) {
	t.Helper()
	if got.Outcome != o || got.Code != code {
		t.Errorf("line %d: got %s %s (%s), want %s %s", got.Line, got.Outcome, got.Code, got.Message, o, code)
	}
}

func wantAction(t *testing.T, got actionState, state, amount, payout string) {
	t.Helper()
	if got.State != state || got.Amount != amount || got.Payout != payout {
		t.Errorf("action is %s %s/%s, want %s %s/%s", got.State, got.Amount, got.Payout, state, amount, payout)
	}
}

func TestOpenNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, password string }{
		{"postgres://returnsd:Zk9/QpW%x7Lm@db.example/returnsd", "Zk9/QpW%x7Lm"},
		{"postgres://returnsd:Zk9@QpW%w0Lm@db.example/returnsd", "Zk9@QpW%w0Lm"},
		{"postgres://returnsd:Zk9QpW%@db.example/returnsd", "Zk9QpW%"},
		{"postgres://returnsd:Zk9 QpW@db.example:99999/returnsd", "Zk9 QpW"},
		{"host=db.example password=Zk9QpWLm port=abc", "Zk9QpWLm"},
		{"postgres://returnsd:Zk9QpWLm@db.example/returnsd?sslmode=bogus", "Zk9QpWLm"},
	} {
		_, err := Open(context.Background(), c.url, nil)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", c.url)
		}
		for i := 0; i+3 <= len(c.password); i++ {
			if part := c.password[i : i+3]; strings.Contains(err.Error(), part) {
				t.Errorf("the error for %q shows %q of the password: %v", c.url, part, err)
				break
			}
		}
		if !strings.Contains(err.Error(), "database URL") {
			t.Errorf("the error does not say what is wrong: %v", err)
		}
	}
}
