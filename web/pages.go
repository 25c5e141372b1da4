package web

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/report"
)

// dayFilesLimit is how many files the day view lists on one page.
const dayFilesLimit = 1000

type dayPage struct {
	Date, Prev, Next, Today string
	Zone                    string
	Brand                   string
	Brands                  []ledger.BrandListing
	// Reports are the day's report (report.Build, rendered by report's
	// own HTML): every brand's for ops, one per brand for a brand user.
	Reports []template.HTML
	Files   []ledger.FileListing
	Totals  dayTotals
	More    string // the next page of the day's files; empty on the last
}

type dayTotals struct {
	Files, Received, Completed, Duplicate, Quarantined int
	Rows, Applied, Rejected, DuplicateRows             int
}

func (p dayPage) title() string { return "Day " + p.Date }

// dayView is the report of a day: the day's files of every brand in scope
// (or the one asked for), with what became of their rows.
func (s *Server) dayView(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	q := r.URL.Query()
	day := s.now().In(s.zone)
	if v := q.Get("date"); v != "" {
		d, err := time.ParseInLocation("2006-01-02", v, s.zone)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "The date is not a day such as 2026-11-02.")
			return
		}
		day = d
	}
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, s.zone)
	to := from.AddDate(0, 0, 1)
	after, ok := intParam(q, "after")
	if !ok {
		s.fail(w, r, http.StatusBadRequest, "The page asked for is not a number.")
		return
	}
	brands, err := s.ledger.Brands(r.Context(), sess.user.Scope())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page := dayPage{Date: from.Format("2006-01-02"), Prev: from.AddDate(0, 0, -1).Format("2006-01-02"),
		Next: to.Format("2006-01-02"), Today: s.now().In(s.zone).Format("2006-01-02"), Zone: s.zone.String(),
		Brand: q.Get("brand"), Brands: brands}
	if page.Reports, err = s.dayReports(r, from, page.Brand, brands); err != nil {
		if errors.Is(err, errNotInScope) {
			s.notFound(w, r)
			return
		}
		s.serverError(w, r, err)
		return
	}
	page.Files, err = s.ledger.FilesReceived(r.Context(), ledger.FilesParams{Scope: sess.user.Scope(), Brand: page.Brand,
		From: from, To: to, AfterID: after, Limit: dayFilesLimit})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, f := range page.Files {
		t := &page.Totals
		t.Files++
		switch f.Status {
		case outcome.Received:
			t.Received++
		case outcome.Completed:
			t.Completed++
		case outcome.DuplicateFile:
			t.Duplicate++
		case outcome.Quarantined:
			t.Quarantined++
		}
		t.Rows += f.Rows
		t.Applied += f.Applied
		t.Rejected += f.Rejected
		t.DuplicateRows += f.Duplicate
	}
	if len(page.Files) == dayFilesLimit {
		v := url.Values{"date": {page.Date}, "after": {strconv.FormatInt(page.Files[len(page.Files)-1].ID, 10)}}
		if page.Brand != "" {
			v.Set("brand", page.Brand)
		}
		page.More = "/day?" + v.Encode()
	}
	s.render(w, r, http.StatusOK, "day", page)
}

var errNotInScope = errors.New("not in the user's scope")

// dayReports builds and renders the report of the day: of the brand asked
// for, or of every brand for ops; a brand user gets one report per brand of
// theirs (report.Build takes one brand or all, and all would show others').
func (s *Server) dayReports(r *http.Request, day time.Time, brand string, inScope []ledger.BrandListing) ([]template.HTML, error) {
	var brands []string
	switch {
	case brand != "":
		if !slices.ContainsFunc(inScope, func(b ledger.BrandListing) bool { return b.Slug == brand }) {
			return nil, errNotInScope
		}
		brands = []string{brand}
	case sessionOf(r).user.Role == ledger.RoleOps:
		brands = []string{""}
	default:
		for _, b := range inScope {
			brands = append(brands, b.Slug)
		}
	}
	opts := report.HTMLOptions{FileURL: func(id int64) string { return "/files/" + strconv.FormatInt(id, 10) }}
	var out []template.HTML
	for _, b := range brands {
		rep, err := report.Build(r.Context(), s.ledger, report.Params{Day: report.DateOf(day), Location: s.zone,
			Brand: b, Now: s.now(), SourceBrands: report.SourceBrands(s.cfg)})
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := report.WriteHTMLBody(&buf, rep, opts); err != nil {
			return nil, err
		}
		// report's own html/template escaped what it shows.
		out = append(out, template.HTML(buf.String()))
	}
	return out, nil
}

// intParam reads a non-negative number from the query; absent is 0.
func intParam(q url.Values, name string) (int64, bool) {
	v := q.Get(name)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

type brandsPage struct{ Brands []ledger.BrandListing }

func (brandsPage) title() string { return "Brands" }

func (s *Server) brandsView(w http.ResponseWriter, r *http.Request) {
	brands, err := s.ledger.Brands(r.Context(), sessionOf(r).user.Scope())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "brands", brandsPage{Brands: brands})
}

// brandFilesLimit is how many of a brand's files its page lists at once.
const brandFilesLimit = 50

type brandPage struct {
	Brand   ledger.BrandListing
	Sources []sourceRow
	Files   []ledger.FileListing
	Older   string
}

func (p brandPage) title() string { return p.Brand.Name }

// brandView is one brand: its funds, its sources and its newest files.
func (s *Server) brandView(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	brand, ok := s.brandInScope(w, r, r.PathValue("slug"))
	if !ok {
		return
	}
	before, ok := intParam(r.URL.Query(), "before")
	if !ok {
		s.fail(w, r, http.StatusBadRequest, "The page asked for is not a number.")
		return
	}
	files, err := s.ledger.BrandFiles(r.Context(), sess.user.Scope(), brand.Slug, before, brandFilesLimit)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	sources, err := s.sourceRows(r, brand.Slug)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page := brandPage{Brand: brand, Sources: sources, Files: files}
	if len(files) == brandFilesLimit {
		page.Older = "/brands/" + url.PathEscape(brand.Slug) + "?before=" + strconv.FormatInt(files[len(files)-1].ID, 10)
	}
	s.render(w, r, http.StatusOK, "brand", page)
}

// brandInScope finds a brand the user may see, or answers 404.
func (s *Server) brandInScope(w http.ResponseWriter, r *http.Request, slug string) (ledger.BrandListing, bool) {
	brands, err := s.ledger.Brands(r.Context(), sessionOf(r).user.Scope())
	if err != nil {
		s.serverError(w, r, err)
		return ledger.BrandListing{}, false
	}
	for _, b := range brands {
		if b.Slug == slug {
			return b, true
		}
	}
	s.notFound(w, r)
	return ledger.BrandListing{}, false
}

// rowsPerPage is how many row outcomes the file view shows at once.
const rowsPerPage = 100

type filePage struct {
	File     ledger.FileListing
	Children []ledger.ReceivedFile
	Reruns   []ledger.ReceivedFile // reprocesses and retries of this file
	// Downloads that exist for this file.
	Original, Result, Receipt bool
	// Controls offered (ops, with Reruns): the forms post CSRF.
	Reprocess, Retry bool
	CSRF             string
	// The row filters, and the choices.
	Outcome  string
	Code     string
	Outcomes []outcome.Outcome
	Codes    []outcome.Code
	Rows     ledger.RowsPage
	First    string
	Prev     string
	Next     string
}

func (p filePage) title() string {
	return "File " + strconv.FormatInt(p.File.ID, 10) + ": " + p.File.Name
}

// fileView is one file: how it ended, when, its counts and downloads, and a
// page of its rows' outcomes, filtered by outcome and code.
func (s *Server) fileView(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	f, ok := s.fileInScope(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	after, ok1 := intParam(q, "after")
	before, ok2 := intParam(q, "before")
	page := filePage{File: f, Outcome: q.Get("outcome"), Code: q.Get("code"),
		Outcomes: []outcome.Outcome{outcome.Applied, outcome.Rejected, outcome.DuplicateRow},
		Codes:    outcome.Codes}
	if !ok1 || !ok2 || after > 1<<31 || before > 1<<31 ||
		(page.Outcome != "" && !slices.Contains(page.Outcomes, outcome.Outcome(page.Outcome))) ||
		(page.Code != "" && !outcome.IsCode(outcome.Code(page.Code))) {
		s.fail(w, r, http.StatusBadRequest, "The filter or page asked for is not one this page offers.")
		return
	}
	page.Original = f.BytesKept
	page.Receipt = f.Status == outcome.Quarantined
	page.Result = (f.Status == outcome.Completed && f.Kind != ledger.KindArchive) || f.Status == outcome.DuplicateFile
	if s.reruns != nil && sess.user.Role == ledger.RoleOps {
		page.Reprocess = canReprocess(f.Status, f.BytesKept)
		page.Retry = canRetry(f.Status, f.Rejected)
		page.CSRF = sess.csrf
	}
	var err error
	if f.Kind == ledger.KindArchive {
		if page.Children, err = s.ledger.ChildFiles(r.Context(), f.ID); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	if page.Reruns, err = s.ledger.Reruns(r.Context(), f.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	page.Rows, err = s.ledger.FileRows(r.Context(), ledger.RowsParams{Scope: sess.user.Scope(), FileID: f.ID,
		Outcome: outcome.Outcome(page.Outcome), Code: outcome.Code(page.Code),
		After: int(after), Before: int(before), Limit: rowsPerPage})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	base := url.Values{}
	if page.Outcome != "" {
		base.Set("outcome", page.Outcome)
	}
	if page.Code != "" {
		base.Set("code", page.Code)
	}
	link := func(key string, line int) string {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		if key != "" {
			v.Set(key, strconv.Itoa(line))
		}
		if len(v) == 0 {
			return "/files/" + strconv.FormatInt(f.ID, 10)
		}
		return "/files/" + strconv.FormatInt(f.ID, 10) + "?" + v.Encode()
	}
	if rows := page.Rows.Rows; len(rows) > 0 {
		if page.Rows.HasPrev {
			page.First, page.Prev = link("", 0), link("before", rows[0].Line)
		}
		if page.Rows.HasNext {
			page.Next = link("after", rows[len(rows)-1].Line)
		}
	} else if after > 0 || before > 0 {
		page.First = link("", 0)
	}
	s.render(w, r, http.StatusOK, "file", page)
}

// fileInScope reads the file of the path's {id} if the user may see it, or
// answers 404: the same for another brand's file as for none.
func (s *Server) fileInScope(w http.ResponseWriter, r *http.Request) (ledger.FileListing, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(w, r)
		return ledger.FileListing{}, false
	}
	f, err := s.ledger.FileInScope(r.Context(), sessionOf(r).user.Scope(), id)
	if errors.Is(err, ledger.ErrNoFile) {
		s.notFound(w, r)
		return f, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return f, false
	}
	return f, true
}

// inquiriesPerPage is how many inquiries the inquiries view shows at once.
const inquiriesPerPage = 100

type inquiriesPage struct {
	Status    string
	Brand     string
	Statuses  []string
	Brands    []ledger.BrandListing
	Inquiries []ledger.InquiryListing
	Older     string
}

func (inquiriesPage) title() string { return "Inquiries" }

var inquiryStatuses = []string{"OPEN", "NEW", "INCOMPLETE", "VALID", "DECLINED"}

func (s *Server) inquiriesView(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	q := r.URL.Query()
	page := inquiriesPage{Status: q.Get("status"), Brand: q.Get("brand"), Statuses: inquiryStatuses}
	before, ok := intParam(q, "before")
	if !ok || (page.Status != "" && !slices.Contains(inquiryStatuses, page.Status)) {
		s.fail(w, r, http.StatusBadRequest, "The filter or page asked for is not one this page offers.")
		return
	}
	var err error
	if page.Brands, err = s.ledger.Brands(r.Context(), sess.user.Scope()); err != nil {
		s.serverError(w, r, err)
		return
	}
	page.Inquiries, err = s.ledger.InquiriesPage(r.Context(), ledger.InquiriesParams{Scope: sess.user.Scope(),
		Brand: page.Brand, Status: page.Status, BeforeID: before, Limit: inquiriesPerPage})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if len(page.Inquiries) == inquiriesPerPage {
		v := url.Values{"before": {strconv.FormatInt(page.Inquiries[len(page.Inquiries)-1].ID, 10)}}
		if page.Status != "" {
			v.Set("status", page.Status)
		}
		if page.Brand != "" {
			v.Set("brand", page.Brand)
		}
		page.Older = "/inquiries?" + v.Encode()
	}
	s.render(w, r, http.StatusOK, "inquiries", page)
}

// sourceRow is a configured source and how its polls go.
type sourceRow struct {
	Name, Brand, Type, Schedule string
	Health                      ledger.SourceHealth
	Polled                      bool   // it has a health record
	Unusable                    string // why the daemon skips it
	NextRun                     time.Time
	// NextPoll is the first run that polls it: after its backoff.
	NextPoll  time.Time
	BackedOff bool
}

type sourcesPage struct{ Sources []sourceRow }

func (sourcesPage) title() string { return "Sources" }

func (s *Server) sourcesView(w http.ResponseWriter, r *http.Request) {
	rows, err := s.sourceRows(r, "")
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "sources", sourcesPage{Sources: rows})
}

// sourceRows lists the configured sources the user may see (of brand, or all
// in scope): a brand user sees their brands' sources, and a mailbox that
// routes mail to one of them.
func (s *Server) sourceRows(r *http.Request, brand string) ([]sourceRow, error) {
	u := sessionOf(r).user
	health, err := s.ledger.SourcesHealth(r.Context())
	if err != nil {
		return nil, err
	}
	byName := map[string]ledger.SourceHealth{}
	for _, h := range health {
		byName[h.Source] = h.SourceHealth
	}
	now := s.now()
	var out []sourceRow
	for i := range s.cfg.Sources {
		src := &s.cfg.Sources[i]
		brands := sourceBrands(src)
		if brand != "" && !slices.Contains(brands, brand) {
			continue
		}
		if u.Role != ledger.RoleOps && !slices.ContainsFunc(brands, func(b string) bool { return slices.Contains(u.Brands, b) }) {
			continue
		}
		row := sourceRow{Name: src.Name, Brand: src.Brand, Type: string(src.Type), Schedule: src.Schedule}
		if src.Type == config.IMAP {
			row.Brand = "(mailbox)"
		}
		row.Health, row.Polled = byName[src.Name]
		if err := s.cfg.SourceUnusable(src); err != nil {
			row.Unusable = err.Error()
		} else if sched, err := s.cfg.SourceSchedule(src); err == nil {
			row.NextRun = sched.Next(now)
			row.NextPoll = row.NextRun
			row.BackedOff = now.Before(row.Health.NextAttempt)
			// A run within the backoff skips the source; the first after it polls.
			for i := 0; i < 100000 && row.NextPoll.Before(row.Health.NextAttempt); i++ {
				row.NextPoll = sched.Next(row.NextPoll)
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// sourceBrands are the brands a source delivers files for.
func sourceBrands(src *config.Source) []string {
	if src.Type != config.IMAP {
		return []string{src.Brand}
	}
	var out []string
	for _, rt := range src.Routes {
		out = append(out, rt.Brand)
	}
	return out
}
