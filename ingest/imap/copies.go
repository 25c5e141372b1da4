package imap

import (
	"crypto/sha256"
	"hash"
	"slices"

	"github.com/emersion/go-message/textproto"

	"github.com/returnsd/returnsd/ingest"
)

// A message can be in the mailbox twice: its To and Cc both route there, so
// the server delivers it once per recipient, or a client saves a copy of what
// it sent. The copies are one message: applied once, answered once, and moved
// together. Two messages are copies of one delivery when they have the same
// Message-ID and the same content: the same body, byte for byte, under the
// same Content-Type (so the same files with the same bytes), the same sender,
// and the same routing and verdict. Only the header fields a server adds on
// delivery (Received, Delivered-To, Return-Path ...) may differ; a message
// reusing a Message-ID with other bytes is another message, taken on its own
// (the ledger still stops a file whose bytes were applied: DUPLICATE_FILE).
// A message read only in part (over MaxMessageBytes) is never a copy.

// bodyHasher hashes what follows the header of the message written to it:
// everything after the first empty line.
type bodyHasher struct {
	h           hash.Hash
	inBody      bool
	atLineStart bool
	cr          bool // a CR at the start of a line, perhaps ending the header
}

func newBodyHasher() *bodyHasher {
	return &bodyHasher{h: sha256.New(), atLineStart: true}
}

func (b *bodyHasher) Write(p []byte) (int, error) {
	n := len(p)
	for i := 0; !b.inBody && i < len(p); i++ {
		switch c := p[i]; {
		case c == '\n' && b.atLineStart:
			b.inBody, p = true, p[i+1:]
		case c == '\n':
			b.atLineStart, b.cr = true, false
		case c == '\r' && b.atLineStart && !b.cr:
			b.cr = true
		default:
			b.atLineStart, b.cr = false, false
		}
	}
	if b.inBody {
		b.h.Write(p)
	}
	return n, nil
}

// fingerprint is what two copies of one delivery share beyond their
// Message-ID and verdict: the body's hash under the header fields that say
// how to read it.
func (b *bodyHasher) fingerprint(h textproto.Header) []byte {
	f := sha256.New()
	for _, key := range []string{"Content-Type", "Content-Transfer-Encoding", "From", "Subject"} {
		f.Write([]byte(h.Get(key)))
		f.Write([]byte{0})
	}
	f.Write(b.h.Sum(nil))
	return f.Sum(nil)
}

// sameDelivery says whether b is a copy of a (see above).
func sameDelivery(a, b *message) bool {
	return a.id != "" && a.id == b.id && a.fingerprint != nil && slices.Equal(a.fingerprint, b.fingerprint) &&
		sameVerdict(a.verdict, b.verdict) && sameRefusal(a.whole, b.whole)
}

func sameVerdict(a, b verdict) bool {
	return a.brand == b.brand && a.from == b.from && sameRefusal(a.refusal, b.refusal)
}

func sameRefusal(a, b *ingest.Refusal) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
