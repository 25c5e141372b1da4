package ledger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestDeliverReportOnce(t *testing.T) {
	t.Parallel()

	day := ReportDay{Day: "2026-11-23", Timezone: "Europe/Berlin"}
	sent := func(calls *int) func(context.Context) (SentReport, error) {
		return func(context.Context) (SentReport, error) {
			*calls++
			return SentReport{Recipients: []string{"ops@platform.example"}, MessageID: "report-2026-11-23@platform.example", By: "test"}, nil
		}
	}

	t.Run("SendsTheFirstTimeAndNeverAgain", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		var calls int

		first, err := l.DeliverReportOnce(b.ctx, day, sent(&calls))
		if err != nil {
			t.Fatal(err)
		}
		second, err := l.DeliverReportOnce(b.ctx, day, sent(&calls))
		if err != nil {
			t.Fatal(err)
		}

		if calls != 1 || !first.Sent || second.Sent || second.MessageID != first.MessageID || !second.SentAt.Equal(first.SentAt) {
			t.Errorf("%d sends; first %+v, second %+v", calls, first, second)
		}
		st, err := l.ReportDeliveryOf(b.ctx, day)
		if err != nil || st.State != "SENT" || st.Attempts != 1 || st.SentBy != "test" || len(st.Recipients) != 1 {
			t.Errorf("recorded %+v (%v)", st, err)
		}
		var other int
		if _, err := l.DeliverReportOnce(b.ctx, ReportDay{Day: day.Day, Timezone: "UTC"}, sent(&other)); err != nil || other != 1 {
			t.Errorf("the same day in another zone is another report: %d sends (%v)", other, err)
		}
	})

	t.Run("AReplicaRacingTheSenderIsToldItIsBusyThenFindsTheDaySent", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		sending, release := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		var first ReportDelivery
		var firstErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, firstErr = l.DeliverReportOnce(b.ctx, day, func(context.Context) (SentReport, error) {
				close(sending)
				<-release
				return SentReport{MessageID: "m1"}, nil
			})
		}()
		<-sending
		var calls int

		_, busyErr := l.DeliverReportOnce(b.ctx, day, sent(&calls))
		close(release)
		wg.Wait()
		after, err := l.DeliverReportOnce(b.ctx, day, sent(&calls))

		if !errors.Is(busyErr, ErrDeliveryBusy) {
			t.Errorf("while the first sends: %v, want ErrDeliveryBusy", busyErr)
		}
		if firstErr != nil || !first.Sent || err != nil || after.Sent || after.MessageID != "m1" || calls != 0 {
			t.Errorf("first %+v (%v), after %+v (%v), %d other sends", first, firstErr, after, err, calls)
		}
	})

	t.Run("AFailedSendIsRecordedAndTheRetrySends", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)

		_, err := l.DeliverReportOnce(b.ctx, day, func(context.Context) (SentReport, error) {
			return SentReport{}, errors.New("smtp: connect: connection refused")
		})
		failed, _ := l.ReportDeliveryOf(b.ctx, day)
		var calls int
		retry, retryErr := l.DeliverReportOnce(b.ctx, day, sent(&calls))

		if err == nil || failed.State != "FAILED" || failed.Attempts != 1 || failed.LastError != "smtp: connect: connection refused" {
			t.Errorf("failed send: %v; recorded %+v", err, failed)
		}
		if retryErr != nil || !retry.Sent || retry.Attempts != 2 || calls != 1 {
			t.Errorf("retry: %+v (%v), %d sends", retry, retryErr, calls)
		}
	})

	t.Run("ASenderWhoseConnectionDiesLeavesTheDayToTheNextAtOnce", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)

		// The replica's session ends while it sends (a crash, a network
		// partition): PostgreSQL releases its lock with it.
		_, err := l.DeliverReportOnce(b.ctx, day, func(ctx context.Context) (SentReport, error) {
			_, err := l.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
				WHERE locktype = 'advisory' AND classid = $1 AND pid <> pg_backend_pid()`, reportLockClass)
			if err != nil {
				t.Error(err)
			}
			return SentReport{}, errors.New("smtp: write message: broken pipe")
		})
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		var calls int
		next, nextErr := l.DeliverReportOnce(ctx, day, sent(&calls))

		if err == nil {
			t.Error("the dead sender reported success")
		}
		if nextErr != nil || !next.Sent || calls != 1 {
			t.Errorf("the next sender: %+v (%v), %d sends", next, nextErr, calls)
		}
	})
}
