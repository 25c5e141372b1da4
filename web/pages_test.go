package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/returnsd/returnsd/outcome"
)

var (
	rowLine  = regexp.MustCompile(`<td class="n">(\d+)</td><td>(APPLIED|REJECTED|DUPLICATE_ROW)</td>`)
	nextLink = regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	prevLink = regexp.MustCompile(`<a href="([^"]+)" rel="prev">`)
)

func TestFileView(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	// 250 rows, three pages: approvals of acme's actions (the first of each
	// applied, the rest duplicates) and reversals of actions that do not exist.
	var file strings.Builder
	file.WriteString("ActionId,Reason\n")
	for i := range 250 {
		if i%3 == 0 {
			fmt.Fprintf(&file, "%d,RETURNED\n", 90000+i)
		} else {
			fmt.Fprintf(&file, "%d,APPROVED\n", 5001+i%10)
		}
	}
	id := b.processBytes(t, "acme", "approvals.csv", []byte(file.String()), "", outcome.Completed)
	var all, notFound []string
	byOutcome := map[outcome.Outcome][]string{}
	err := b.ledger.Outcomes(ctx, id, func(r outcome.Row) error {
		l := strconv.Itoa(r.Line)
		all = append(all, l+" "+string(r.Outcome))
		byOutcome[r.Outcome] = append(byOutcome[r.Outcome], l+" "+string(r.Outcome))
		if r.Code == outcome.ActionNotFound {
			notFound = append(notFound, l+" "+string(r.Outcome))
		}
		return nil
	})
	if err != nil || len(all) != 250 {
		t.Fatalf("outcomes: %d, %v", len(all), err)
	}
	olga := b.signedIn(t, opsUser)

	// walk follows the pages forward from start, then back, and returns the rows.
	walk := func(t *testing.T, start string) (forward, back []string) {
		t.Helper()
		path := start
		var pages []string
		for range 10 {
			p := olga.get(path)
			if p.code != http.StatusOK {
				t.Fatalf("GET %s: %d", path, p.code)
			}
			pages = append(pages, path)
			for _, m := range rowLine.FindAllStringSubmatch(p.body, -1) {
				forward = append(forward, m[1]+" "+m[2])
			}
			next := nextLink.FindStringSubmatch(p.body)
			if next == nil {
				break
			}
			path = html.UnescapeString(next[1])
		}
		for range 10 {
			p := olga.get(path)
			var page []string
			for _, m := range rowLine.FindAllStringSubmatch(p.body, -1) {
				page = append(page, m[1]+" "+m[2])
			}
			back = append(page, back...)
			prev := prevLink.FindStringSubmatch(p.body)
			if prev == nil {
				break
			}
			path = html.UnescapeString(prev[1])
		}
		return forward, back
	}

	t.Run("EveryRowOnceInLineOrderForwardAndBack", func(t *testing.T) {
		forward, back := walk(t, fmt.Sprintf("/files/%d", id))
		if !slices.Equal(forward, all) {
			t.Errorf("paging forward shows %d rows, want the file's %d in order:\n%v", len(forward), len(all), forward)
		}
		if !slices.Equal(back, all) {
			t.Errorf("paging back shows %d rows, want the file's %d in order", len(back), len(all))
		}
	})

	for _, o := range []outcome.Outcome{outcome.Applied, outcome.Rejected, outcome.DuplicateRow} {
		t.Run("FilteredBy"+string(o), func(t *testing.T) {
			if len(byOutcome[o]) == 0 {
				t.Fatalf("the file has no %s row", o)
			}
			forward, back := walk(t, fmt.Sprintf("/files/%d?outcome=%s", id, o))
			if !slices.Equal(forward, byOutcome[o]) || !slices.Equal(back, byOutcome[o]) {
				t.Errorf("%s rows: forward %d, back %d, want %d", o, len(forward), len(back), len(byOutcome[o]))
			}
		})
	}

	t.Run("FilteredByCode", func(t *testing.T) {
		forward, _ := walk(t, fmt.Sprintf("/files/%d?code=ACTION_NOT_FOUND", id))
		if !slices.Equal(forward, notFound) || len(notFound) != 84 {
			t.Errorf("ACTION_NOT_FOUND rows: %d, want the file's %d", len(forward), len(notFound))
		}
		if none, _ := walk(t, fmt.Sprintf("/files/%d?code=CURRENCY_MISMATCH", id)); len(none) != 0 {
			t.Errorf("CURRENCY_MISMATCH rows: %v", none)
		}
	})

	t.Run("AFilterNotOfferedIsRefused", func(t *testing.T) {
		for _, q := range []string{"outcome=SOMETHING", "code=NOT_A_CODE", "after=-1", "after=x", "before=99999999999"} {
			if p := olga.get(fmt.Sprintf("/files/%d?%s", id, q)); p.code != http.StatusBadRequest {
				t.Errorf("?%s: %d", q, p.code)
			}
		}
	})

	t.Run("AQuarantinedFileShowsItsReasonAndReceipt", func(t *testing.T) {
		p := olga.get(fmt.Sprintf("/files/%d", b.globexQuarantined))
		for _, s := range []string{"QUARANTINED", "UNKNOWN_KIND", "Receipt", "Gutschriften_KW47.csv"} {
			if !strings.Contains(p.body, s) {
				t.Errorf("the quarantined file's page lacks %q", s)
			}
		}
		r := olga.get(fmt.Sprintf("/files/%d/result", b.globexQuarantined))
		if r.code != http.StatusOK || !strings.Contains(r.body, "UNKNOWN_KIND") ||
			!strings.Contains(r.header.Get("Content-Disposition"), "receipt_Gutschriften_KW47_") {
			t.Errorf("receipt: %d %q\n%s", r.code, r.header.Get("Content-Disposition"), r.body)
		}
	})

	t.Run("TheOriginalBytesAreTheFile's", func(t *testing.T) {
		p := olga.get(fmt.Sprintf("/files/%d/original", id))
		if p.body != file.String() || !strings.Contains(p.header.Get("Content-Disposition"), `filename=approvals.csv`) {
			t.Errorf("original: %q, %d bytes", p.header.Get("Content-Disposition"), len(p.body))
		}
	})

	t.Run("TheOtherPagesShowWhatTheySay", func(t *testing.T) {
		for path, want := range map[string][]string{
			"/brands":               {"ACME Outdoor", "Globex Versand", "Open inquiries"},
			"/brands/acme":          {"ACME Outdoor", "acme_returns.csv", "approvals.csv", "Sources"},
			"/sources":              {"acme-drop", "globex-drop", "Next run", "no such file or directory", "1 failed"},
			"/inquiries":            {"Inquiries", "No inquiries."},
			"/day?brand=globex":     {"Retouren_KW47.csv", "Gutschriften_KW47.csv"},
			"/day?date=2001-01-01":  {"No files."},
			"/inquiries?status=NEW": {"No inquiries."},
		} {
			p := olga.get(path)
			if p.code != http.StatusOK {
				t.Errorf("GET %s: %d", path, p.code)
			}
			for _, s := range want {
				if !strings.Contains(p.body, s) {
					t.Errorf("GET %s lacks %q", path, s)
				}
			}
		}
		if p := olga.get("/day?brand=globex"); strings.Contains(p.body, "acme_returns.csv") {
			t.Error("the day view of globex lists acme's file")
		}
		if p := olga.get("/day?date=yesterday"); p.code != http.StatusBadRequest {
			t.Errorf("a date that is not one: %d", p.code)
		}
	})
}
