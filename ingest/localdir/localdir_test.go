package localdir_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/localdir"
	"github.com/returnsd/returnsd/ingest/sourcetest"
	"github.com/returnsd/returnsd/internal/pgtest"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/poller"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, cfg *config.Source) ingest.Source {
		cfg.Type = config.LocalDir
		s := localdir.New(cfg)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// unreachable is a source whose listing fails, counting the attempts.
type unreachable struct {
	ingest.Source
	lists int
}

func (u *unreachable) List(context.Context) ([]ingest.File, error) {
	u.lists++
	return nil, errors.New("connection refused")
}

// The backoff is the poller's, the same for every kind of source; a local folder
// that is missing stands for a server that is down.
func TestASourceThatIsDownIsBackedOffAndTheOthersKeepFlowing(t *testing.T) {
	newSource := func(t *testing.T, cfg *config.Source) ingest.Source {
		cfg.Type = config.LocalDir
		return localdir.New(cfg)
	}
	h := sourcetest.Setup(t, newSource)
	start := time.Now().Truncate(time.Second)
	now := start
	h.Poller.Now = func() time.Time { return now }
	down := &unreachable{Source: h.Src}

	_, err := h.PollWith(down)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("first poll: %v", err)
	}
	// Within the minute after the first failure the source is not contacted.
	now = now.Add(59 * time.Second)
	_, err = h.PollWith(down)
	var off *poller.BackingOffError
	if !errors.As(err, &off) || down.lists != 1 || off.Failures != 1 ||
		!off.Until.Equal(start.Add(time.Minute)) || !strings.Contains(off.Error(), "connection refused") {
		t.Fatalf("second poll: %v after %d listings", err, down.lists)
	}

	// Another source of the same poller and ledger keeps flowing meanwhile.
	otherCfg := *h.Cfg
	otherCfg.Name = "other-source"
	h.Put("returns.csv", sourcetest.ReturnsFile(5001, "x"), time.Hour)
	for range 2 {
		if _, err := h.Poller.PollOnce(context.Background(), localdir.New(&otherCfg), &otherCfg, poller.PollOptions{}); err != nil {
			t.Fatalf("the other source: %v", err)
		}
	}
	if n := h.QueryInt("SELECT count(*) FROM received_files WHERE source = 'other-source' AND status = 'COMPLETED'"); n != 1 {
		t.Fatalf("the other source applied %d files, want 1", n)
	}

	// The wait doubles with each failure in a row: 2, 4, 8 minutes.
	for i, wait := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		health, err := h.Poller.Ledger.SourceHealth(context.Background(), h.Cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		now = health.NextAttempt
		if _, err := h.PollWith(down); err == nil || errors.As(err, &off) {
			t.Fatalf("failure %d: %v", i+2, err)
		}
		health, err = h.Poller.Ledger.SourceHealth(context.Background(), h.Cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		if health.Failures != i+2 || !health.NextAttempt.Equal(now.Add(wait)) ||
			!health.FailingSince.Equal(start) {
			t.Fatalf("after failure %d: %+v, want the next attempt at %s", i+2, health, now.Add(wait))
		}
	}

	// A person asking for a poll gets one; once the source answers, it is healthy again.
	h.Poller.IgnoreBackoff = true
	h.Put("late.csv", sourcetest.ReturnsFile(5002, "y"), time.Hour)
	now = now.Add(time.Second) // backed off for another 8 minutes
	h.Poll()
	h.Poller.IgnoreBackoff = false
	h.WantStatus(h.Poll(), "late.csv", outcome.Completed)
	if got, err := h.Poller.Ledger.SourceHealth(context.Background(), h.Cfg.Name); err != nil || got.Failures != 0 ||
		!got.NextAttempt.IsZero() || !got.LastSuccess.Equal(now) {
		t.Fatalf("after a good poll: %+v, %v", got, err)
	}
}
