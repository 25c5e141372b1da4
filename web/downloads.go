package web

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"

	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/internal/safetext"
	"github.com/returnsd/returnsd/ledger"
	"github.com/returnsd/returnsd/outcome"
	"github.com/returnsd/returnsd/pipeline"
	"github.com/returnsd/returnsd/processors"
)

// Actions of the audit log the pages record.
const (
	auditDownloadOriginal = "web.download_original"
	auditDownloadResult   = "web.download_result"
	auditDownloadReceipt  = "web.download_receipt"
	auditJobQueue         = "web.job_queue"
)

// downloadOriginal sends a file's bytes as the ledger keeps them.
func (s *Server) downloadOriginal(w http.ResponseWriter, r *http.Request) {
	f, ok := s.fileInScope(w, r)
	if !ok {
		return
	}
	if !f.BytesKept {
		s.fail(w, r, http.StatusNotFound, "The bytes of this file were not kept (it was over the size limit, "+
			"or repeats a file whose bytes are kept).")
		return
	}
	if err := s.audit(r, ledger.AuditEntry{Action: auditDownloadOriginal, Brand: f.Brand, FileID: f.ID}); err != nil {
		s.serverError(w, r, err)
		return
	}
	attachment(w, f.Name, "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Size, 10))
	if err := s.ledger.FileBytes(r.Context(), f.ID, w); err != nil {
		// The status is sent; a short body is all that can tell the browser.
		s.log.ErrorContext(r.Context(), "download of a file's bytes failed", "file_id", f.ID, "error", err)
	}
}

// downloadResult sends a file's result file as the brand got it (SPEC §4),
// or a quarantined file's receipt: written now from the kept bytes and the
// outcomes, in the brand's format, under the name the brand got it by.
func (s *Server) downloadResult(w http.ResponseWriter, r *http.Request) {
	f, ok := s.fileInScope(w, r)
	if !ok {
		return
	}
	format := processors.Format{}
	if b, err := s.cfg.Brand(f.Brand); err == nil {
		format = pipeline.Format(b)
	}
	if err := os.MkdirAll(s.cfg.SpoolDir, 0o700); err != nil {
		s.serverError(w, r, err)
		return
	}
	tmp, err := os.CreateTemp(s.cfg.SpoolDir, fmt.Sprintf("web-result-%d-*.csv", f.ID))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	var name, action string
	switch {
	case f.Status == outcome.Quarantined:
		name, action = filename.Receipt(f.Name, f.ID), auditDownloadReceipt
		err = s.files.WriteReceipt(f.ReceivedFile, format, tmp)
	case (f.Status == outcome.Completed && f.Kind != ledger.KindArchive) || f.Status == outcome.DuplicateFile:
		name, action = filename.Result(f.Name, f.ID), auditDownloadResult
		var wrote bool
		if wrote, err = s.files.WriteResult(r.Context(), f.ReceivedFile, format, tmp); err == nil && !wrote {
			err = fmt.Errorf("file %d has no result", f.ID)
		}
	default:
		s.fail(w, r, http.StatusNotFound, "This file has no result file: it is not finished, or it is an archive whose files have their own.")
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.audit(r, ledger.AuditEntry{Action: action, Brand: f.Brand, FileID: f.ID}); err != nil {
		s.serverError(w, r, err)
		return
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	attachment(w, name, "text/csv")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	io.Copy(w, tmp)
}

// attachment says the answer is a download named name. The name is a
// brand's: it is sent as printable UTF-8, quoted by mime's rules.
func attachment(w http.ResponseWriter, name, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": safetext.Printable(name)}))
}
