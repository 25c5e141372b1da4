package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/returnsd/returnsd/ledger"
)

// pages are the parsed templates, one set per page: the layout and the page.
type pages struct {
	byName map[string]*template.Template
}

// view is what every page's template gets: the layout's data, and the page's.
type view struct {
	Title string
	User  *ledger.WebUser // nil on the sign-in page
	CSRF  string          // the session's token, for the forms
	Ops   bool
	Jobs  bool // the job queue's UI is there
	Nav   string
	Page  any
}

func parsePages(zone *time.Location) (*pages, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(zone).Format("2006-01-02 15:04:05 MST")
		},
		"clock": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.In(zone).Format("15:04:05")
		},
		"took": func(from, to time.Time) string {
			if from.IsZero() || to.IsZero() {
				return "—"
			}
			d := to.Sub(from)
			if d < time.Second {
				return d.Round(time.Millisecond).String()
			}
			return d.Round(100 * time.Millisecond).String()
		},
		"size":  humanSize,
		"lower": strings.ToLower,
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

func humanSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// titled is a page's data that names its own title.
type titled interface{ title() string }

// render writes a page in the layout. It renders into memory first, so a
// template that fails sends a clean error, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, page any) {
	t := s.pages.byName[name]
	v := view{Page: page, Nav: name, Jobs: s.jobs != nil}
	if t, ok := page.(titled); ok {
		v.Title = t.title()
	}
	if sess := sessionOf(r); sess != nil {
		v.User, v.CSRF, v.Ops = &sess.user, sess.csrf, sess.user.Role == ledger.RoleOps
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

type errorPage struct {
	Code    int
	Status  string
	Message string
}

func (p errorPage) title() string { return p.Status }
func (p loginPage) title() string { return "Sign in" }
