package imap

import (
	"path"
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/returnsd/returnsd/internal/safetext"
)

// Which parts of a message are the brand's data files. Mail clients attach
// much that is not: Outlook's signature logo (image001.png, inline in
// multipart/related), Thunderbird's OpenPGP key (OpenPGP_0x….asc) and
// signature, S/MIME's smime.p7s, a vCard, a calendar invite, Outlook's
// winmail.dat. Taken as files they would be quarantined as undecodable and
// send a message whose CSV was applied to the quarantine mailbox. They are
// listed as ignored instead: named in the reply, and in the reason when a
// message has nothing else.
//
// A part is decided by what it says it is, in this order:
//   - a name ending in a data extension (.csv .tsv .txt .xlsx .zip .gz ...)
//     is data, whatever its type says (Outlook sends a CSV as
//     application/vnd.ms-excel, old mailers as application/octet-stream):
//     if it is not, the pipeline quarantines it and the brand hears why;
//   - else a content type that is not data (image/*, a signature, a key, a
//     vCard, a calendar, TNEF, a PDF ...) is ignored;
//   - else a name that says it is not data (.png, .p7s, .asc, .vcf, .ics,
//     winmail.dat ...) is ignored, for the many parts sent as
//     application/octet-stream;
//   - anything else with a name is data (a brand's ERP may name its file
//     RETURNS.DAT): the source's include patterns narrow that further.
//
// A part without a name is a file only when its type is a data type
// (text/csv, as it always was; the xlsx, zip and gzip types); otherwise it is
// the message's text (or an unnamed picture in it) and not mentioned, unless
// its disposition says attachment. The second part of a multipart/signed is
// its signature, whatever it is called.

// dataExtensions are the names of the files returnsd reads (SPEC §3), and the
// text files ERPs write them as.
var dataExtensions = map[string]bool{
	".csv": true, ".tsv": true, ".tab": true, ".psv": true, ".txt": true,
	".xlsx": true, ".zip": true, ".gz": true,
}

// unnamedDataTypes name an unnamed part of a data type.
var unnamedDataTypes = map[string]string{
	"text/csv":                    ".csv",
	"text/comma-separated-values": ".csv",
	"text/tab-separated-values":   ".tsv",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
	"application/zip":              ".zip",
	"application/x-zip-compressed": ".zip",
	"application/gzip":             ".gz",
	"application/x-gzip":           ".gz",
}

// What a part that is not data is, as the reply and the reason call it.
const (
	kindSignature   = "signature"
	kindEncrypted   = "encrypted message"
	kindKey         = "OpenPGP key"
	kindContact     = "contact card"
	kindCalendar    = "calendar invite"
	kindTNEF        = "Outlook rich-text wrapper, TNEF"
	kindInlineImage = "inline image"
	kindImage       = "image"
	kindAudio       = "audio"
	kindVideo       = "video"
	kindDocument    = "document"
	kindHTML        = "web page"
	kindMessageText = "message text"
	kindItem        = "attached message, not opened"
)

var notDataTypes = map[string]string{
	"application/pkcs7-signature":   kindSignature,
	"application/x-pkcs7-signature": kindSignature,
	"application/pgp-signature":     kindSignature,
	"application/pkcs7-mime":        kindEncrypted,
	"application/x-pkcs7-mime":      kindEncrypted,
	"application/pgp-encrypted":     kindEncrypted,
	"application/pgp-keys":          kindKey,
	"text/vcard":                    kindContact,
	"text/x-vcard":                  kindContact,
	"text/directory":                kindContact,
	"text/calendar":                 kindCalendar,
	"application/ics":               kindCalendar,
	"application/ms-tnef":           kindTNEF,
	"application/vnd.ms-tnef":       kindTNEF,
	"text/html":                     kindHTML,
	"application/pdf":               kindDocument,
	"application/msword":            kindDocument,
	"application/rtf":               kindDocument,
	"text/rtf":                      kindDocument,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": kindDocument,
	"application/vnd.oasis.opendocument.text":                                 kindDocument,
	"application/vnd.ms-outlook":                                              kindItem,
}

var notDataExtensions = map[string]string{
	".p7s": kindSignature, ".sig": kindSignature,
	".p7m": kindEncrypted, ".gpg": kindEncrypted, ".pgp": kindEncrypted,
	".asc": kindKey,
	".vcf": kindContact, ".vcard": kindContact,
	".ics": kindCalendar, ".vcs": kindCalendar,
	".png": kindImage, ".jpg": kindImage, ".jpeg": kindImage, ".gif": kindImage, ".bmp": kindImage,
	".tif": kindImage, ".tiff": kindImage, ".webp": kindImage, ".heic": kindImage, ".svg": kindImage,
	".emz": kindImage, ".wmz": kindImage, ".wmf": kindImage, ".emf": kindImage,
	".pdf": kindDocument, ".doc": kindDocument, ".docx": kindDocument, ".odt": kindDocument, ".rtf": kindDocument,
	".htm": kindHTML, ".html": kindHTML,
	".msg": kindItem, ".eml": kindItem,
}

// exchangeBodyPart is how Exchange and Apple Mail name the pieces of a
// message's text that follow an attachment (ATT00001.txt, ATT00002.htm).
var exchangeBodyPart = regexp.MustCompile(`(?i)^ATT\d{5}\.(txt|htm|html)$`)

// notData says why a named part is not one of the brand's data files, or ""
// when it is one (see the rules above).
func notData(h textproto.Header, mediaType, name string) string {
	ext := strings.ToLower(path.Ext(name))
	if exchangeBodyPart.MatchString(name) && strings.HasPrefix(mediaType, "text/") {
		return kindMessageText
	}
	if dataExtensions[ext] {
		return ""
	}
	if kind := notDataTypes[mediaType]; kind != "" {
		return kind
	}
	switch major, _, _ := strings.Cut(mediaType, "/"); major {
	case "image":
		return imageKind(h)
	case "audio":
		return kindAudio
	case "video":
		return kindVideo
	}
	if strings.EqualFold(name, "winmail.dat") {
		return kindTNEF
	}
	if kind := notDataExtensions[ext]; kind != "" {
		if kind == kindImage {
			return imageKind(h)
		}
		return kind
	}
	return ""
}

// imageKind tells a picture in the message's text (inline, or referred to by
// its Content-ID, as Outlook's signature logo is) from one attached.
func imageKind(h textproto.Header) string {
	if disposition(h) != "attachment" || h.Get("Content-Id") != "" {
		return kindInlineImage
	}
	return kindImage
}

// disposition is the part's Content-Disposition value, lower-case ("" when absent).
func disposition(h textproto.Header) string {
	d, _ := parseParams(h.Get("Content-Disposition"))
	return d
}

// ignoredPart is a part of a message that is not a data file.
type ignoredPart struct {
	id   string
	name string // "" when it has none
	kind string // why it is not data, e.g. "inline image"
}

// String is the part as the brand reads it in a reply or a reason:
// "image001.png (inline image)", its name escaped (safetext.Printable).
func (p ignoredPart) String() string {
	if p.name == "" {
		return "an unnamed part (" + p.kind + ")"
	}
	return safetext.Printable(p.name) + " (" + p.kind + ")"
}
