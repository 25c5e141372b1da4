package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
)

func TestSourceFiles(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	a := ListedFile{Path: "/in/a.csv", Size: 10, ModTime: at}

	states := func(t *testing.T, s []SeenFile) []SourceFileState {
		out := make([]SourceFileState, len(s))
		for i := range s {
			out[i] = s[i].State
		}
		return out
	}

	t.Run("AFileIsNewThenSeenWhileUnchanged", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		for i, want := range []SourceFileState{SourceFileNew, SourceFileSeen, SourceFileSeen} {
			s, err := l.ObserveSourceFiles(b.ctx, "src", []ListedFile{a})
			if err != nil {
				t.Fatal(err)
			}
			if s[0].State != want {
				t.Errorf("listing %d: %s; want %s", i+1, s[0].State, want)
			}
		}
	})

	t.Run("AChangedFileStartsOverAndItsOldObservationIsForgotten", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		l.ObserveSourceFiles(b.ctx, "src", []ListedFile{a})
		grown := a
		grown.Size = 20
		s, _ := l.ObserveSourceFiles(b.ctx, "src", []ListedFile{grown})
		if s[0].State != SourceFileNew {
			t.Errorf("grown file: %s", s[0].State)
		}
		s, _ = l.ObserveSourceFiles(b.ctx, "src", []ListedFile{a}) // shrunk back: not stable on the old observation
		if s[0].State != SourceFileNew {
			t.Errorf("file back to its old size: %s; want NEW", s[0].State)
		}
	})

	t.Run("DoneAndAcknowledgedFilesAreRemembered", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		l.ObserveSourceFiles(b.ctx, "src", []ListedFile{a})
		sum := []byte{1, 2, 3}
		if err := l.MarkSourceFileDone(b.ctx, SourceFileDoneParams{Source: "src", File: a, SHA256: sum, Status: outcome.Quarantined}); err != nil {
			t.Fatal(err)
		}
		s, _ := l.ObserveSourceFiles(b.ctx, "src", []ListedFile{a, {Path: "/in/b.csv", Size: 1, ModTime: at}})
		if got := states(t, s); got[0] != SourceFileDone || s[0].Status != outcome.Quarantined || got[1] != SourceFileNew {
			t.Errorf("states %v %+v", got, s)
		}
		if err := l.MarkSourceFileAcked(b.ctx, "src", a); err != nil {
			t.Fatal(err)
		}
		s, _ = l.ObserveSourceFiles(b.ctx, "src", []ListedFile{a})
		if s[0].State != SourceFileAcked {
			t.Errorf("state %s", s[0].State)
		}
		if prev, ok, err := l.DoneSourceFileByHash(b.ctx, "src", a.Path, sum); err != nil || !ok || prev.Status != outcome.Quarantined {
			t.Errorf("by hash: %+v %v %v", prev, ok, err)
		}
		if _, ok, _ := l.DoneSourceFileByHash(b.ctx, "other", a.Path, sum); ok {
			t.Error("another source's file was found")
		}
		if s, _ := l.ObserveSourceFiles(b.ctx, "other", []ListedFile{a}); s[0].State != SourceFileNew {
			t.Errorf("sources share memory: %s", s[0].State)
		}
	})

	t.Run("OnePollerAtATimeHoldsASource", func(t *testing.T) {
		t.Parallel()
		l, b := setup(t)
		unlock, err := l.LockSource(b.ctx, "src")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.LockSource(b.ctx, "src"); !errors.Is(err, ErrSourceBusy) {
			t.Errorf("second lock: %v", err)
		}
		other, err := l.LockSource(b.ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		other()
		unlock()
		again, err := l.LockSource(b.ctx, "src")
		if err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		again()
	})
}
