// Package ingest is the contract of the places brands' files come from (a local
// folder, an SFTP or FTP server, a mailbox): the Source interface, the File it
// lists, and the rules for names. A Source only moves bytes; the poller
// (package poller) decides which files are taken and what becomes of them.
//
// Each kind of source lives in its own subpackage (ingest/localdir, ingest/sftp,
// ingest/ftp, ingest/imap), knows nothing of the ledger or the file formats,
// and passes the one conformance suite in ingest/sourcetest.
package ingest

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"
	"time"

	"github.com/returnsd/returnsd/internal/filename"
	"github.com/returnsd/returnsd/outcome"
)

// File is one file as a source lists it. Name and Path come from the remote side
// and are never used as local paths: the poller names spool files itself.
type File struct {
	// Name is the file's name as the brand gave it (a base name for folders, an
	// attachment's file name for mail). It names the result file.
	Name string
	// Path identifies the file on the source: the full remote path for folders,
	// a message and part identifier for mail. Unique within the source; the seen
	// table keys on it.
	Path string
	// Size is the size in bytes the source reports; a fetch must deliver exactly this.
	Size int64
	// ModTime is the modification time the source reports (for mail: the
	// message's arrival). With Size, it decides whether a file is stable.
	ModTime time.Time
	// Brand is the brand the file belongs to when the source routes files to
	// brands itself (a shared mailbox). Empty: the source's configured brand.
	Brand string
	// Refusal, when set, says the file must not be applied (a message from a
	// sender not allowed, or with nothing to take): the poller receives its
	// bytes and quarantines it with this code and reason, whatever the name
	// rules say. Without a brand (no route) it is not received at all: the
	// poller acknowledges it as failed and reports it.
	Refusal *Refusal
	// Reply is whom Put answers for the file, as List found it (mail: the
	// sender and the message). The poller records it with the file, and
	// gives it back to Put however much later, from another replica or for a
	// file no source lists any more (a file run again). Zero for folders.
	Reply Reply
}

// Reply is what a source needs to answer a file it listed once that file is
// gone from its listing: for mail, whom to answer and the message to reply to.
type Reply struct {
	To        string   // the address the answer is mailed to: the message's sender
	InReplyTo string   // the Message-ID of the message, without angle brackets; "" when it had none
	NotTaken  []string // the parts of the message not taken as files, as the reply names them
}

// Refusal is why a source refuses a file it lists: a code of docs/outcomes.md
// and a reason ops and the brand can act on.
type Refusal struct {
	Code   outcome.QuarantineCode
	Reason string
}

// Disposition is what became of a file whose outcome is committed; it decides
// where Ack puts the source's copy.
type Disposition int

const (
	// Processed: the file was applied (COMPLETED) or was a DUPLICATE_FILE.
	Processed Disposition = iota
	// Failed: the file was QUARANTINED.
	Failed
)

func (d Disposition) String() string {
	if d == Failed {
		return "failed"
	}
	return "processed"
}

// Source is a place a brand's files come from. Implementations connect lazily
// (on the first call that needs the server), reconnect after a lost connection
// on the next call, bound every network operation by a deadline (a server that
// hangs fails the call rather than blocking it), and prefix their errors with
// their type ("sftp: ..."). A Source is used by one poller at a time; its
// methods need not be safe for concurrent use.
type Source interface {
	// List returns the regular files directly in the source's folder (or its
	// mailbox's attachments), in no particular order. Directories, symbolic links
	// and other special files are left out. Name rules (include/exclude, our own
	// result_* files, done-markers) are the poller's business, not the source's:
	// List returns every file. An error means the listing as a whole failed (the
	// server is down, the folder is missing); nothing is taken then.
	List(ctx context.Context) ([]File, error)

	// Fetch writes the content of f, as listed by List, to w. It returns an error
	// if the content could not be read in full (connection lost, the file gone, a
	// deadline passed) or if w fails; what was written is then to be thrown away.
	// It does not check the size or hash: the poller does, on what w received.
	Fetch(ctx context.Context, f File, w io.Writer) error

	// Put stores a result file under name in the source's result folder (for
	// mail: a reply to f.Reply.To; f is the file the brand sent, with the Name
	// and Reply List gave it, and need not be listed now), replacing a file of
	// that name. A reader of the folder never sees half a file: it is written
	// under a temporary name and renamed into place.
	Put(ctx context.Context, f File, name string, r io.Reader) error

	// Ack tells the source that f's outcome is committed, per the source's
	// `after` setting: move it to processed/ or failed/ (by d) under the source's
	// folder, delete it, or leave it. It is idempotent: a file already moved or
	// deleted (by an Ack before a crash) is not an error. The poller calls it
	// again, at the start of each poll, for every file acknowledged before that
	// is still listed: a source that moves a group of files at once (a message
	// and its attachments) learns from it which of them are done, even after a
	// restart.
	Ack(ctx context.Context, f File, d Disposition) error

	// Close releases the connection, if any. The Source may not be used after.
	Close() error
}

// ErrNotStable is returned by Fetch implementations that notice the file
// changing under them (its size no longer what was listed). The poller treats
// it as "try again next poll".
var ErrNotStable = errors.New("the file changed while it was fetched")

// ArchiveName is the name a file is moved to in processed/ or failed/ when that
// folder already holds one of its name (the brand sent a file of the same name
// again): the name with the time appended, so neither copy is lost. A long name
// is shortened to leave room for the time (see filename.Fit).
func ArchiveName(name string, now time.Time) string {
	suffix := "." + now.UTC().Format("20060102T150405.000000000Z")
	return filename.Fit(name, filename.MaxBytes-len(suffix)) + suffix
}

// SafeName reports whether a remote file name is a plain name: not empty, not
// . or .., without a slash, backslash or NUL. Other names are never taken: a
// server that sends "../x.csv" is broken or hostile.
func SafeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}

// Wanted reports whether a file name passes the include patterns (any; none means
// all) and no exclude pattern, ignoring case: *.csv takes RETURNS_SAP.CSV, which
// SAP and Windows clients write. Our own result_* and receipt_* files are never
// wanted. why says which rule left a file out.
func Wanted(name string, include, exclude []string) (ok bool, why string) {
	if filename.IsOurs(name) {
		return false, "a file returnsd writes (result_*, receipt_*)"
	}
	folded := strings.ToLower(name)
	for _, pat := range exclude {
		if ok, _ := path.Match(strings.ToLower(pat), folded); ok {
			return false, "matches exclude " + pat
		}
	}
	if len(include) == 0 {
		return true, ""
	}
	for _, pat := range include {
		if ok, _ := path.Match(strings.ToLower(pat), folded); ok {
			return true, ""
		}
	}
	return false, "matches no include pattern: " + strings.Join(include, " ")
}
