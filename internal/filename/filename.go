// Package filename fits names derived from a brand's file name (its result, an
// archived copy, a temporary upload) within what file systems and servers allow.
package filename

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBytes is the longest file name most file systems (ext4, XFS, NTFS in bytes
// of UTF-8, and the SFTP and FTP servers on them) accept.
const MaxBytes = 255

// Fit returns name if it is at most limit bytes long. Otherwise it cuts the part
// before the extension at a character boundary and puts "~" and 8 hex digits of
// the whole name's SHA-256 in its place, so two long names that differ only at
// their end still get two names, and the extension still says what it is.
func Fit(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	mark := "~" + hex.EncodeToString(sum[:4])
	ext := path.Ext(name)
	if len(ext) > 16 || len(ext)+len(mark) >= limit {
		ext = "" // not an extension worth keeping, or no room for it
	}
	keep := limit - len(mark) - len(ext)
	for keep > 0 && !utf8.RuneStart(name[keep]) {
		keep--
	}
	return name[:max(keep, 0)] + mark + ext
}

// IsOurs reports whether a file name is one returnsd writes (result_*,
// receipt_*): such files are never ingested, so a result uploaded next to the
// inbox never loops back. A result being uploaded is written as
// ".result_<name>.tmp" first: a crash mid-upload leaves that behind, and it is
// ours too.
func IsOurs(name string) bool {
	base := strings.TrimPrefix(strings.ToLower(filepath.Base(name)), ".")
	return strings.HasPrefix(base, "result_") || strings.HasPrefix(base, "receipt_")
}

// IsReceipt reports a name Receipt made.
func IsReceipt(name string) bool {
	return strings.HasPrefix(strings.ToLower(filepath.Base(name)), "receipt_")
}

// maxResult bounds a result file's name so that the temporary names it is
// uploaded under (".<name>.tmp" and the like) fit in a file name too: a result
// that cannot be uploaded leaves its file unacknowledged, fetched on every poll.
const maxResult = 200

// Result is the name of the result file of the received file fileID, named
// name (SPEC §4): result_<stem>_<fileID>.csv. The stem is the name without its
// data extensions (returns.csv.gz gives result_returns_12.csv, not
// result_returns.csv.csv), and the file's id keeps every result apart: a
// brand that sends returns.csv every week keeps every week's result, and
// returns.csv and returns.gz get one each. fileID 0 (a dry run, or a name for
// the command line's own use) leaves the id out. Long names are shortened (Fit).
func Result(name string, fileID int64) string { return ours("result_", name, fileID) }

// Receipt is the name of the receipt of a quarantined file, as Result names a result.
func Receipt(name string, fileID int64) string { return ours("receipt_", name, fileID) }

func ours(prefix, name string, fileID int64) string {
	stem := Stem(name)
	suffix := ".csv"
	if fileID != 0 {
		suffix = "_" + strconv.FormatInt(fileID, 10) + suffix
	}
	return prefix + Fit(stem, maxResult-len(prefix)-len(suffix)) + suffix
}

// dataExtensions are what Stem takes off, as often as a name carries them.
var dataExtensions = []string{".csv", ".txt", ".tsv", ".tab", ".xlsx", ".xlsm", ".zip", ".gz", ".gzip"}

// Stem is a file's base name without its data extensions (returns.csv.gz:
// returns), matched ignoring case; a name that is only extensions keeps one.
func Stem(name string) string {
	stem := filepath.Base(name)
	for {
		ext := strings.ToLower(filepath.Ext(stem))
		if ext == "" || ext == stem || !slices.Contains(dataExtensions, ext) || len(stem) == len(ext) {
			return stem
		}
		stem = stem[:len(stem)-len(ext)]
	}
}
