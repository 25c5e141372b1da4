// Package web is the ops pages: what ops (and brands, read-only) look at on
// the daemon's operations listener. The day's files, a brand, a file with
// every row's outcome and its downloads, inquiries, the sources' health and
// the job queue (River's own UI), behind a sign-in.
//
// Everything but the sign-in page and its stylesheet needs a session. A
// session is a random token in a cookie (Secure, HttpOnly, SameSite=Lax),
// kept in the ledger as its SHA-256 only, with an expiry; signing out deletes
// it. Every form posts a token derived from the session's (csrf.go), and
// every unsafe request must come from the pages' own origin
// (http.CrossOriginProtection). A user is ops (every brand; the controls) or
// a brand user (read-only, their brands): every read of the ledger takes the
// user's ledger.Scope, and an object outside it is a 404, like one that does
// not exist. Failed sign-ins are throttled per user name and per address.
// What a person does on the pages is recorded, by name, in the ledger's audit
// trail (web_audit).
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/pipeline"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Params are what the pages run with.
type Params struct {
	// Config must have had WithDefaults and Validate: the brands, sources and
	// schedules shown, and the web section.
	Config *config.Config
	Ledger *ledger.Ledger
	// Files writes result files from the bytes the ledger keeps.
	Files  *pipeline.Pipeline
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Jobs, when set, is the job queue River's UI shows and acts on (ops only).
	Jobs *river.Client[pgx.Tx]
	// Throttle bounds password guessing; zero fields take DefaultThrottle's.
	Throttle ledger.LoginThrottle
	// Reruns, when set, are the controls that run a file again (ops only).
	Reruns Reruns
}

// DefaultThrottle: five wrong passwords for one name, or fifty from one
// address, within a quarter of an hour refuse further tries until the oldest
// of them is that old. The per-address bound is high because a reverse proxy
// makes every browser one address.
var DefaultThrottle = ledger.LoginThrottle{Window: 15 * time.Minute, MaxPerName: 5, MaxPerAddr: 50}

// Server serves the pages.
type Server struct {
	cfg      *config.Config
	ledger   *ledger.Ledger
	files    *pipeline.Pipeline
	log      *slog.Logger
	now      func() time.Time
	throttle ledger.LoginThrottle
	pages    *pages
	jobs     *jobsUI // nil without Params.Jobs
	reruns   Reruns  // nil: no controls
	lifetime time.Duration
	secure   bool
	zone     *time.Location
	handler  http.Handler
}

// New builds the pages. Nothing runs until Start (the job queue's UI has
// background work) and the Handler is served.
func New(p Params) (*Server, error) {
	if p.Config == nil || p.Ledger == nil || p.Files == nil {
		return nil, errors.New("web: Config, Ledger and Files are required")
	}
	s := &Server{cfg: p.Config, ledger: p.Ledger, files: p.Files, log: p.Logger, now: p.Now,
		throttle: p.Throttle, reruns: p.Reruns, secure: !p.Config.Web.InsecureCookie, zone: p.Config.Report.Location()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.throttle.Window <= 0 {
		s.throttle.Window = DefaultThrottle.Window
	}
	if s.throttle.MaxPerName <= 0 {
		s.throttle.MaxPerName = DefaultThrottle.MaxPerName
	}
	if s.throttle.MaxPerAddr <= 0 {
		s.throttle.MaxPerAddr = DefaultThrottle.MaxPerAddr
	}
	var ok bool
	if s.lifetime, ok = p.Config.Web.SessionLifetime.Fixed(); !ok || s.lifetime <= 0 {
		s.lifetime = 12 * time.Hour
	}
	var err error
	if s.pages, err = parsePages(s.zone); err != nil {
		return nil, err
	}
	if p.Jobs != nil {
		if s.jobs, err = newJobsUI(p.Jobs, s.log); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Start starts the background work of the job queue's UI until ctx is done.
func (s *Server) Start(ctx context.Context) error {
	if s.jobs == nil {
		return nil
	}
	if err := s.jobs.ui.Start(ctx); err != nil {
		return fmt.Errorf("web: start the job queue's UI: %w", err)
	}
	return nil
}

// Handler serves every page; mount it at "/".
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent) // the pages have no icon; a browser's ask is no page view
	})
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)

	// Everything below needs a session.
	auth := http.NewServeMux()
	auth.HandleFunc("POST /logout", s.logout)
	auth.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/day", http.StatusSeeOther)
	})
	auth.HandleFunc("GET /day", s.dayView)
	auth.HandleFunc("GET /brands", s.brandsView)
	auth.HandleFunc("GET /brands/{slug}", s.brandView)
	auth.HandleFunc("GET /files/{id}", s.fileView)
	auth.HandleFunc("GET /files/{id}/original", s.downloadOriginal)
	auth.HandleFunc("GET /files/{id}/result", s.downloadResult)
	if s.reruns != nil {
		auth.Handle("POST /files/{id}/reprocess", s.opsOnly(s.rerun(false)))
		auth.Handle("POST /files/{id}/retry-rejected", s.opsOnly(s.rerun(true)))
	}
	auth.HandleFunc("GET /inquiries", s.inquiriesView)
	auth.HandleFunc("GET /sources", s.sourcesView)
	auth.Handle("/jobs/", s.opsOnly(s.jobsHandler()))
	auth.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.notFound(w, r) })
	mux.Handle("/", s.requireSession(auth))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusForbidden, "This request came from another site, and was refused.")
	}))
	return cop.Handler(securityHeaders(mux))
}

// securityHeaders are sent with every answer: the pages load nothing from
// elsewhere, run no script of their own, are framed by no one and cached by
// no one (they hold brands' data).
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		if !isJobsPath(r.URL.Path) {
			// River's UI is a script application of its own; the rest are plain pages.
			hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; "+
				"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		}
		h.ServeHTTP(w, r)
	})
}

// fail answers with an error page (or, to a user not signed in, plain text).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", errorPage{Code: code, Status: http.StatusText(code), Message: msg})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "There is nothing here, or nothing you may see.")
}

// serverError logs err and answers 500 without its details.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "ops page failed", "path", r.URL.Path, "error", err)
	s.fail(w, r, http.StatusInternalServerError, "Something went wrong; the daemon's log says what.")
}
