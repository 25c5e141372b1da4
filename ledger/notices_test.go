package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/returnsd/returnsd/processors"
)

// withContacts gives partner 77 of acme a contact (and the brand's terms);
// partner 78 has none.
func (b *testBundle) withContacts(l *Ledger) {
	b.t.Helper()
	b.syncBrands(l, func(acme, _ *Brand) {
		acme.Partners = append(acme.Partners, PartnerContract{Partner: 77, LockingDays: acme.LockingDays,
			PayoutDelayDays: acme.PayoutDelayDays, Contact: "claims@partner77.example"})
	})
}

// mailbox is a Send that records what it was given; down makes it fail.
type mailbox struct {
	mu    sync.Mutex
	down  bool
	got   map[int64]int // history id -> times sent
	tried int
	seen  []InquiryNotice
}

func (m *mailbox) send(_ context.Context, n InquiryNotice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tried++
	if m.down {
		return errors.New("smtp: connect: connection refused")
	}
	if m.got == nil {
		m.got = map[int64]int{}
	}
	m.got[n.HistoryID]++
	m.seen = append(m.seen, n)
	return nil
}

func (b *testBundle) deliver(l *Ledger, at time.Time, m *mailbox) DeliverSummary {
	b.t.Helper()
	sum, err := l.DeliverInquiryNotices(b.ctx, DeliverParams{At: at, Send: m.send})
	if err != nil {
		b.t.Fatal(err)
	}
	return sum
}

func TestInquiryNotices(t *testing.T) {
	t.Parallel()
	order := time.Date(2026, 11, 2, 12, 0, 0, 0, newYork)
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, newYork)

	t.Run("EachChangeIsDeliveredExactlyOnceThoughTheMailServerIsDownForAWhile", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withContacts(l)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order), inquiry("Q-2", 77, "A-2", order),
			inquiry("Q-3", 78, "A-3", order))
		b.resolve(l, "acme", now, valid("Q-1"), declined("Q-2", processors.DeclineReasons[5]), valid("Q-3"))
		var changes int
		if err := l.pool.QueryRow(b.ctx, "SELECT count(*) FROM inquiry_history WHERE partner_id = 77").Scan(&changes); err != nil {
			t.Fatal(err)
		}
		if changes != 4 {
			t.Fatalf("%d changes of partner 77's inquiries, want 2 submissions and 2 resolutions", changes)
		}

		m := &mailbox{down: true}
		first := b.deliver(l, now, m)
		if first.Sent != 0 || first.Failed != 1 || first.Pending != 4 || m.tried != 1 {
			t.Errorf("with the server down: %+v after %d tries; want one failed try, the run ended, 4 pending", first, m.tried)
		}
		// Within the backoff the failed notice waits; the others are tried.
		b.deliver(l, now.Add(30*time.Second), m)
		b.deliver(l, now.Add(time.Minute), m)
		b.deliver(l, now.Add(2*time.Minute), m)
		m.down = false
		sum := b.deliver(l, now.Add(3*time.Minute), m)
		if sum.Pending != 1 {
			t.Errorf("once the server is back: %+v, want the notice whose retry is not due yet left", sum)
		}
		sum = b.deliver(l, now.Add(time.Hour), m)
		if sum.Pending != 0 || len(m.got) != 4 {
			t.Errorf("an hour later: %+v, %d notices sent, want all 4", sum, len(m.got))
		}
		for id, n := range m.got {
			if n != 1 {
				t.Errorf("notice %d sent %d times", id, n)
			}
		}
		if b.deliver(l, now.Add(2*time.Hour), m).Sent != 0 {
			t.Error("a later run sent again")
		}
		var attempts, failed int
		if err := l.pool.QueryRow(b.ctx, "SELECT max(attempts), count(*) FILTER (WHERE attempts > 1) FROM inquiry_notices").Scan(&attempts, &failed); err != nil {
			t.Fatal(err)
		}
		if attempts < 2 || failed == 0 {
			t.Errorf("max attempts %d, %d notices tried more than once: the failures were not recorded", attempts, failed)
		}
		// The partner heard of its changes in their order, with what each said.
		var valid InquiryNotice
		for _, n := range m.seen {
			if n.InquiryID == "Q-1" && n.Status == "VALID" {
				valid = n
			}
			if n.PartnerID != 77 || n.Recipient != "claims@partner77.example" {
				t.Errorf("notice %+v is not partner 77's", n)
			}
		}
		if valid.OldStatus != "NEW" || valid.FinalPayout == nil || valid.FinalPayout.String() != "8.50" || valid.ActionID == 0 ||
			valid.BrandName != "ACME Outdoor" || valid.Oid != "A-1" {
			t.Errorf("the VALID notice: %+v", valid)
		}
	})

	t.Run("NoneForARolledBackChange", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withContacts(l)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 77, "A-1", order))
		m := &mailbox{}
		b.deliver(l, now, m)
		_, err := l.ApplyInquiryResolutions(b.ctx, ApplyParams{Brand: "acme", Actor: "test", At: now, DryRun: true},
			iter([]processors.InquiryResolution{valid("Q-1")}))
		if err != nil {
			t.Fatal(err)
		}
		failing := errors.New("the result file could not be written")
		_, err = l.ApplyInquiryResolutions(b.ctx, ApplyParams{FileID: b.receive(l, "acme"), Brand: "acme", Actor: "test", At: now,
			Inspect: func(context.Context, OutcomeReader) error { return failing }},
			iter([]processors.InquiryResolution{declined("Q-1", processors.DeclineReasons[0])}))
		if !errors.Is(err, failing) {
			t.Fatalf("apply: %v", err)
		}
		if sum := b.deliver(l, now.Add(time.Hour), m); sum.Sent != 0 || len(m.seen) != 1 || m.seen[0].Status != "NEW" {
			t.Errorf("%+v, sent %+v: want only the submission", sum, m.seen)
		}
	})

	t.Run("APartnerWithoutAContactIsNotMailed", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withContacts(l)
		b.importInquiries(l, "acme", now, inquiry("Q-1", 78, "A-1", order))
		b.resolve(l, "acme", now, valid("Q-1"))
		if sum := b.deliver(l, now, &mailbox{}); sum.Sent != 0 || sum.Pending != 0 {
			t.Errorf("%+v", sum)
		}
	})

	t.Run("RunsAtOnceSendEachNoticeOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		b.withContacts(l)
		var rows []processors.Inquiry
		for i := range 40 {
			rows = append(rows, inquiry(fmt.Sprintf("Q-%d", i), 77, fmt.Sprintf("A-%d", i), order))
		}
		b.importInquiries(l, "acme", now, rows...)
		m := &mailbox{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := l.DeliverInquiryNotices(b.ctx, DeliverParams{At: now, Send: func(ctx context.Context, n InquiryNotice) error {
					time.Sleep(2 * time.Millisecond)
					return m.send(ctx, n)
				}}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(m.got) != 40 || m.tried != 40 {
			t.Errorf("%d notices sent in %d sends, want 40 once each", len(m.got), m.tried)
		}
	})
}
