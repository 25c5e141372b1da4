package web

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/returnsd/returnsd/ledger"
)

// jobsPrefix is where River's UI is mounted, for ops only.
const jobsPrefix = "/jobs"

// jobsUI is River's own UI over the daemon's job queue: queued, running,
// retried and failed jobs, with their errors, and the controls to cancel,
// retry or delete a job and pause a queue.
type jobsUI struct {
	ui *riverui.Handler
}

func newJobsUI(client *river.Client[pgx.Tx], log *slog.Logger) (*jobsUI, error) {
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    log.With("component", "riverui"),
		Prefix:    jobsPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("web: the job queue's UI: %w", err)
	}
	return &jobsUI{ui: ui}, nil
}

func isJobsPath(path string) bool {
	return path == jobsPrefix || strings.HasPrefix(path, jobsPrefix+"/")
}

// isJobsAPI is a request of River's UI to its API. Its script cannot post the
// pages' CSRF token; its unsafe requests are JSON, which no form of another
// site can send without the browser asking first (and the cross-origin check
// refuses), and they come with the session's SameSite cookie only from here.
func isJobsAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, jobsPrefix+"/api/") }

// jobsHandler serves River's UI (ops only: see routes), and records every
// action taken in it in the audit trail before it is done.
func (s *Server) jobsHandler() http.Handler {
	if s.jobs == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.fail(w, r, http.StatusNotFound, "The job queue is shown by the daemon (returnsd run) only.")
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if isJobsAPI(r) && ct != "application/json" {
				s.fail(w, r, http.StatusUnsupportedMediaType, "The job queue's API takes JSON only.")
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			if err != nil {
				s.fail(w, r, http.StatusBadRequest, "The request could not be read.")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			detail := map[string]any{"request": r.Method + " " + strings.TrimPrefix(r.URL.Path, jobsPrefix),
				"body": string(body[:min(len(body), 1000)])}
			if err := s.audit(r, ledger.AuditEntry{Action: auditJobQueue, Detail: detail}); err != nil {
				s.serverError(w, r, err)
				return
			}
		}
		s.jobs.ui.ServeHTTP(w, r)
	})
}
