package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/returnsd/returnsd/outcome"
)

// Reruns run a file again, as `returnsd files reprocess` and `returnsd files
// retry-rejected` do: each makes a new received file linked to the original,
// applied and answered to the brand like any, and records the request, by
// actor, in the audit log. Without them (Params.Reruns nil) the pages have
// no such control.
type Reruns interface {
	// Reprocess runs a QUARANTINED file's kept bytes again under the
	// current config, and returns the new file's id.
	Reprocess(ctx context.Context, fileID int64, actor string) (int64, error)
	// RetryRejected runs the rows of a COMPLETED file that were rejected for
	// want of an action or inquiry again, and returns the new file's id. A
	// row is never applied twice.
	RetryRejected(ctx context.Context, fileID int64, actor string) (int64, error)
}

// Refused wraps why a file cannot be run again, in words ops can act on:
// the page shows them. Other errors are logged, not shown.
type Refused struct{ Reason error }

func (e *Refused) Error() string { return e.Reason.Error() }
func (e *Refused) Unwrap() error { return e.Reason }

// canReprocess and canRetry say which control a file's page offers; the
// rerun itself decides, under the brand's lock, and may still refuse.
func canReprocess(status outcome.FileStatus, bytesKept bool) bool {
	return status == outcome.Quarantined && bytesKept
}

func canRetry(status outcome.FileStatus, rejected int) bool {
	return status == outcome.Completed && rejected > 0
}

// rerun is the POST of a control (ops only, with the session's CSRF token,
// checked before it gets here): it runs the file again and shows the new file.
func (s *Server) rerun(retry bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.fileInScope(w, r)
		if !ok {
			return
		}
		actor := "web:" + sessionOf(r).user.Name
		var id int64
		var err error
		switch {
		case retry && canRetry(f.Status, f.Rejected):
			id, err = s.reruns.RetryRejected(r.Context(), f.ID, actor)
		case !retry && canReprocess(f.Status, f.BytesKept):
			id, err = s.reruns.Reprocess(r.Context(), f.ID, actor)
		default:
			err = &Refused{Reason: errors.New("this control is not offered for a file in this state")}
		}
		var refused *Refused
		switch {
		case errors.As(err, &refused):
			s.fail(w, r, http.StatusConflict, refused.Error())
			return
		case err != nil:
			s.serverError(w, r, err)
			return
		}
		http.Redirect(w, r, "/files/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
	}
}
