package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/returnsd/returnsd/web"
)

// fakeReruns records what the controls asked for. The reruns themselves are
// the files work's, tested there; here, who may ask and how.
type fakeReruns struct {
	mu     sync.Mutex
	calls  []string
	newID  int64
	refuse error
}

func (f *fakeReruns) Reprocess(_ context.Context, id int64, actor string) (int64, error) {
	return f.call("reprocess", id, actor)
}

func (f *fakeReruns) RetryRejected(_ context.Context, id int64, actor string) (int64, error) {
	return f.call("retry-rejected", id, actor)
}

func (f *fakeReruns) call(what string, id int64, actor string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %d by %s", what, id, actor))
	return f.newID, f.refuse
}

func (f *fakeReruns) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func TestControls(t *testing.T) {
	t.Parallel()
	reruns := &fakeReruns{}
	_, b := setup(t, setupOpts{reruns: reruns})
	reruns.newID = b.acmeReturns
	retry := fmt.Sprintf("/files/%d/retry-rejected", b.acmeReturns)
	reprocess := fmt.Sprintf("/files/%d/reprocess", b.globexQuarantined)

	t.Run("OpsRetriesAndReprocessesByName", func(t *testing.T) {
		olga := b.signedIn(t, opsUser)
		page := olga.get(fmt.Sprintf("/files/%d", b.acmeReturns))
		if !strings.Contains(page.body, `id="retry-rejected"`) || strings.Contains(page.body, `id="reprocess"`) {
			t.Errorf("a completed file with rejected rows offers retry only:\n%s", page.body)
		}
		if page := olga.get(fmt.Sprintf("/files/%d", b.globexQuarantined)); !strings.Contains(page.body, `id="reprocess"`) {
			t.Errorf("a quarantined file offers no reprocess")
		}
		p := olga.post(retry, url.Values{"csrf": {olga.csrf("/day")}})
		if p.code != http.StatusSeeOther || p.header.Get("Location") != fmt.Sprintf("/files/%d", b.acmeReturns) {
			t.Errorf("retry: %d %q", p.code, p.header.Get("Location"))
		}
		p = olga.post(reprocess, url.Values{"csrf": {olga.csrf("/day")}})
		if p.code != http.StatusSeeOther {
			t.Errorf("reprocess: %d", p.code)
		}
		want := []string{fmt.Sprintf("retry-rejected %d by web:olga", b.acmeReturns),
			fmt.Sprintf("reprocess %d by web:olga", b.globexQuarantined)}
		if got := reruns.take(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("reruns asked: %v, want %v", got, want)
		}
	})

	t.Run("AControlOnAFileNotInItsStateIsRefused", func(t *testing.T) {
		olga := b.signedIn(t, opsUser)
		token := olga.csrf("/day")
		for _, path := range []string{fmt.Sprintf("/files/%d/reprocess", b.acmeReturns),
			fmt.Sprintf("/files/%d/retry-rejected", b.globexQuarantined)} {
			if p := olga.post(path, url.Values{"csrf": {token}}); p.code != http.StatusConflict {
				t.Errorf("POST %s: %d", path, p.code)
			}
		}
		if got := reruns.take(); len(got) != 0 {
			t.Errorf("reruns asked: %v", got)
		}
	})

	t.Run("ARefusalIsShown", func(t *testing.T) {
		reruns.refuse = &web.Refused{Reason: errors.New("an earlier retry of the file waits to be applied")}
		defer func() { reruns.refuse = nil }()
		olga := b.signedIn(t, opsUser)
		p := olga.post(retry, url.Values{"csrf": {olga.csrf("/day")}})
		if p.code != http.StatusConflict || !strings.Contains(p.body, "an earlier retry of the file waits") {
			t.Errorf("refused retry: %d\n%s", p.code, p.body)
		}
		reruns.take()
	})

	t.Run("WithoutItsTokenNothingRuns", func(t *testing.T) {
		olga := b.signedIn(t, opsUser)
		other := b.signedIn(t, opsUser)
		for _, form := range []url.Values{{}, {"csrf": {other.csrf("/day")}}} {
			for _, path := range []string{retry, reprocess} {
				if p := olga.post(path, form); p.code != http.StatusForbidden {
					t.Errorf("POST %s with %v: %d", path, form, p.code)
				}
			}
		}
		if p := olga.post(retry, url.Values{"csrf": {olga.csrf("/day")}}, "Sec-Fetch-Site", "cross-site"); p.code != http.StatusForbidden {
			t.Errorf("a cross-site retry: %d", p.code)
		}
		if p := olga.get(retry); p.code != http.StatusMethodNotAllowed && p.code != http.StatusNotFound {
			t.Errorf("GET of a control: %d", p.code)
		}
		if got := reruns.take(); len(got) != 0 {
			t.Errorf("reruns asked: %v", got)
		}
	})

	t.Run("ABrandUserHasNoControls", func(t *testing.T) {
		anna := b.signedIn(t, acmeUser)
		if page := anna.get(fmt.Sprintf("/files/%d", b.acmeReturns)); strings.Contains(page.body, "retry-rejected") {
			t.Error("anna's file page offers a retry")
		}
		token := anna.csrf("/day")
		for _, path := range []string{retry, reprocess} {
			if p := anna.post(path, url.Values{"csrf": {token}}); p.code != http.StatusNotFound {
				t.Errorf("anna POST %s: %d", path, p.code)
			}
		}
		if got := reruns.take(); len(got) != 0 {
			t.Errorf("reruns asked: %v", got)
		}
	})
}
