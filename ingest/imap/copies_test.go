package imap

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestTheBodyHashIgnoresTheHeaderAServerAddsOnDelivery(t *testing.T) {
	const body = "Content-Type: text/csv\r\n\r\nActionId\r\n5001\r\n"
	hash := func(msg string, chunk int) []byte {
		r, err := readMessage(&chunkReader{s: msg, n: chunk}, true)
		if err != nil {
			t.Fatal(err)
		}
		return r.fingerprint
	}
	saved := "From: a@acme.example\r\nMessage-ID: <x@acme.example>\r\n" + body
	delivered := "Delivered-To: returns+acme@platform.example\r\nReceived: from mx by imap; Tue, 17 Mar 2026 09:12:44 +0000\r\n" + saved
	for _, chunk := range []int{1, 2, 3, 1 << 20} {
		if !bytes.Equal(hash(saved, chunk), hash(delivered, 1<<20)) {
			t.Errorf("chunks of %d: a copy with more trace headers differs", chunk)
		}
	}
	if bytes.Equal(hash(saved, 1<<20), hash(strings.Replace(saved, "5001", "5002", 1), 1<<20)) {
		t.Error("another body has the same fingerprint")
	}
	if bytes.Equal(hash(saved, 1<<20), hash(strings.Replace(saved, "text/csv", "text/plain", 1), 1<<20)) {
		t.Error("the same body under another Content-Type has the same fingerprint")
	}
	lf := strings.ReplaceAll(saved, "\r\n", "\n")
	if !bytes.Equal(hash(lf, 1<<20), hash(strings.Replace(lf, "\n\n", "\nX-Extra: 1\n\n", 1), 7)) {
		t.Error("a message with LF line ends: the header's end was not found")
	}
}

// chunkReader reads s n bytes at a time.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}
