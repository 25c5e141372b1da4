package ledger

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Names and paths come from brands' servers and mailers as bytes: a Windows
// client without UTF-8 leaves "Retouren M\xe4rz.csv" on the server. PostgreSQL's
// text refuses bytes that are not UTF-8 (and NUL), and a refused name stopped
// its whole source. They are stored escaped, exactly and reversibly: a byte
// that is not UTF-8 (or NUL) as \xNN, a backslash as \\; every other name is
// stored as it is. The ledger hands back the bytes.

// storedName is name as the ledger stores it.
func storedName(name string) string {
	if utf8.ValidString(name) && !strings.ContainsAny(name, "\\\x00") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r == 0:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(name[i])|0x100, 16)[1:])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(name[i : i+size])
		}
		i += size
	}
	return b.String()
}

// nameOf is the name storedName stored. A backslash not followed by an escape
// (a name stored before names were escaped) stands for itself.
func nameOf(stored string) string {
	if !strings.Contains(stored, `\`) {
		return stored
	}
	var b strings.Builder
	for i := 0; i < len(stored); i++ {
		c := stored[i]
		if c == '\\' && i+1 < len(stored) {
			if stored[i+1] == '\\' {
				b.WriteByte('\\')
				i++
				continue
			}
			if stored[i+1] == 'x' && i+3 < len(stored) {
				if v, err := strconv.ParseUint(stored[i+2:i+4], 16, 8); err == nil {
					b.WriteByte(byte(v))
					i += 3
					continue
				}
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}
