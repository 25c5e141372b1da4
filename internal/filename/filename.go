// Package filename fits names derived from a brand's file name (its result, an
// archived copy, a temporary upload) within what file systems and servers allow.
package filename

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"path/filepath"
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

// maxResult bounds a result file's name so that the temporary names it is
// uploaded under (".<name>.tmp" and the like) fit in a file name too: a result
// that cannot be uploaded leaves its file unacknowledged, fetched on every poll.
const maxResult = 200

// Result is the name of a file's result file: result_<name>.csv, the name
// shortened (see Fit) when it is very long.
func Result(name string) string {
	base := filepath.Base(name)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	return "result_" + Fit(stem, maxResult-len("result_.csv")) + ".csv"
}
