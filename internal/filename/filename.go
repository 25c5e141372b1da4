// Package filename fits names derived from a brand's file name (its result, an
// archived copy, a temporary upload) within what file systems and servers allow.
package filename

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
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
