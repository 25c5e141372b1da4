package imap

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/outcome"
)

func TestParseParams(t *testing.T) {
	for _, c := range []struct {
		in, value, key, want string
	}{
		{`attachment; filename="returns.csv"`, "attachment", "filename", "returns.csv"},
		{`ATTACHMENT; FileName=plain.csv; size=12`, "attachment", "filename", "plain.csv"},
		{`attachment; filename="a \"quoted\"; name.csv"`, "attachment", "filename", `a "quoted"; name.csv`},
		{`attachment; filename*=iso-8859-1'fr'r%E9sum%E9.csv`, "attachment", "filename", "résumé.csv"},
		{`attachment; filename*=UTF-8''%C3%BCber.csv; filename="fallback.csv"`, "attachment", "filename", "über.csv"},
		{`attachment; filename*0*=windows-1252''%80uro; filename*1="_2026"; filename*2*=%2Ecsv`, "attachment", "filename", "€uro_2026.csv"},
		{`attachment; filename="=?UTF-8?B?UsO8Y2tzZW5kdW5nZW4uY3N2?="`, "attachment", "filename", "Rücksendungen.csv"},
		{`text/csv; name="=?ISO-8859-1?Q?retour_=E9t=E9.csv?="`, "text/csv", "name", "retour été.csv"},
		{`attachment; broken; filename=after-a-broken-param.csv`, "attachment", "filename", "after-a-broken-param.csv"},
		{`attachment; filename*=x-unknown-charset''%41.csv`, "attachment", "filename", "A.csv"},
		{`multipart/mixed; boundary="=_b;x"`, "multipart/mixed", "boundary", "=_b;x"},
		{``, "", "filename", ""},
	} {
		value, params := parseParams(c.in)
		if value != c.value || params[c.key] != c.want {
			t.Errorf("parseParams(%q) = %q, %s=%q; want %q, %q", c.in, value, c.key, params[c.key], c.value, c.want)
		}
	}
}

const nestedMessage = "From: a@acme.example\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n" +
	"\r\n" +
	"preamble\r\n" +
	"--outer\r\n" +
	"Content-Type: text/plain\r\n" +
	"\r\n" +
	"the text, not a file\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/signed; boundary=signed\r\n" +
	"\r\n" +
	"--signed\r\n" +
	"Content-Type: text/csv\r\n" +
	"\r\n" +
	"unnamed,csv\r\n" +
	"--signed\r\n" +
	"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n" +
	"\r\n" +
	"not a file either\r\n" +
	"--signed--\r\n" +
	"--outer\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"From: b@acme.example\r\n" +
	"Content-Type: application/octet-stream; name=\"fwd.csv\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"QWN0aW9uSWQsUmVhc29uCjUwMDEsUkVUVVJO\r\n" +
	"RUQK\r\n" +
	"--outer\r\n" +
	"Content-Type: image/png\r\n" +
	"Content-Disposition: inline\r\n" +
	"\r\n" +
	"a picture without a name\r\n" +
	"--outer\r\n" +
	"Content-Type: text/csv; charset=windows-1252\r\n" +
	"Content-Disposition: attachment; filename=\"qp.csv\"\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Betrag=3B=80\r\n" +
	"--outer--\r\n" +
	"epilogue\r\n"

func TestWalkMessageFindsEveryFileWithItsDecodedBytes(t *testing.T) {
	type found struct{ id, name, body string }
	var got []found
	var ignored []walkedPart
	h, err := walkMessage(strings.NewReader(nestedMessage), func(p walkedPart, body io.Reader) error {
		if p.notData != "" {
			ignored = append(ignored, p)
			return nil
		}
		b, err := io.ReadAll(body)
		got = append(got, found{p.id, p.name, string(b)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("From") != "a@acme.example" {
		t.Errorf("header %v", h.Get("From"))
	}
	want := []found{
		{"2.1", "attachment-2.1.csv", "unnamed,csv"},
		{"3.1", "fwd.csv", "ActionId,Reason\n5001,RETURNED\n"},
		// The charset is the brand's business: the bytes stay windows-1252.
		{"5", "qp.csv", "Betrag;\x80"},
	}
	if len(got) != len(want) {
		t.Fatalf("found %q; want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("file %d: %q; want %q", i, got[i], want[i])
		}
	}
	// The signature is not a file; the unnamed inline picture is the text's.
	if want := []walkedPart{{id: "2.2", name: "smime.p7s", notData: "signature"}}; !slices.Equal(ignored, want) {
		t.Errorf("ignored %+v; want %+v", ignored, want)
	}
	// What List counts is what Fetch copies out, part by part.
	r, err := readMessage(strings.NewReader(nestedMessage), true)
	if err != nil || r.malformed != "" {
		t.Fatalf("read: %v %s", err, r.malformed)
	}
	if r.size != int64(len(nestedMessage)) {
		t.Errorf("size %d; want %d", r.size, len(nestedMessage))
	}
	for i, p := range r.parts {
		var buf bytes.Buffer
		if err := copyPart(&buf, strings.NewReader(nestedMessage), p.id); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want[i].body || p.size != int64(len(want[i].body)) {
			t.Errorf("part %s: copied %q, listed %d bytes; want %q", p.id, buf.String(), p.size, want[i].body)
		}
	}
}

func TestASinglePartMessageIsPartOne(t *testing.T) {
	msg := "Content-Type: text/csv\r\nContent-Disposition: attachment; filename=top.csv\r\n\r\na,b\r\n"
	r, err := readMessage(strings.NewReader(msg), true)
	if err != nil || len(r.parts) != 1 || r.parts[0].id != "1" || r.parts[0].name != "top.csv" || r.parts[0].size != 5 {
		t.Fatalf("%v %+v", err, r)
	}
}

func TestAMalformedMessageIsNotAReadError(t *testing.T) {
	bad := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Disposition: attachment; filename=x.csv\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--b--\r\n"
	r, err := readMessage(strings.NewReader(bad), true)
	if err != nil || r.malformed == "" {
		t.Fatalf("err %v, malformed %q; want a malformed reading", err, r.malformed)
	}
	noBoundary := "Content-Type: multipart/mixed\r\n\r\nbody\r\n"
	if r, err := readMessage(strings.NewReader(noBoundary), true); err != nil || !strings.Contains(r.malformed, "boundary") {
		t.Fatalf("err %v, malformed %q", err, r.malformed)
	}
	broken := errors.New("connection reset")
	_, err = readMessage(io.MultiReader(strings.NewReader(nestedMessage[:300]), errReader{broken}), true)
	if !errors.Is(err, broken) {
		t.Fatalf("err %v; a failing connection must fail the read", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func header(lines ...string) textproto.Header {
	var h textproto.Header
	for i := len(lines) - 1; i >= 0; i-- { // Add puts a field on top
		k, v, _ := strings.Cut(lines[i], ": ")
		h.Add(k, v)
	}
	return h
}

func TestRoute(t *testing.T) {
	routes := []config.Route{
		{Recipient: "returns+acme@platform.example", Brand: "acme", Senders: []string{"*@acme.example"}},
		{Recipient: "Returns+Globex@Platform.example", Brand: "globex", Senders: []string{"returns@globex.example"}},
	}
	for _, c := range []struct {
		name   string
		h      textproto.Header
		brand  string
		reason string
	}{
		{"ByTo", header("To: Returns <RETURNS+ACME@platform.example>"), "acme", ""},
		{"ByCc", header("To: ops@platform.example", "Cc: returns+globex@platform.example"), "globex", ""},
		{"TheEnvelopeRecipientWins", header("Delivered-To: returns+globex@platform.example", "To: returns+acme@platform.example"), "globex", ""},
		{"XOriginalTo", header("X-Original-To: returns+acme@platform.example", "To: undisclosed-recipients:;"), "acme", ""},
		{"TwoBrandsAreNoRoute", header("To: returns+acme@platform.example, returns+globex@platform.example"), "", "more than one brand (acme, globex"},
		{"NoMatch", header("To: someone@else.example"), "", "no route for its recipients (someone@else.example)"},
		{"NoRecipient", header("Subject: x"), "", "names no recipient"},
		{"AnUnparsableHeaderStillRoutes", header("To: <<returns+acme@platform.example"), "acme", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			brand, _, reason := route(routes, c.h)
			if brand != c.brand || !strings.Contains(reason, c.reason) {
				t.Errorf("route = %q, %q; want %q, %q", brand, reason, c.brand, c.reason)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	cfg := &config.Source{Routes: []config.Route{
		{Recipient: "returns+acme@platform.example", Brand: "acme", Senders: []string{"*@acme.example"}},
		{Recipient: "returns+acme2@platform.example", Brand: "acme", Senders: []string{"partner@agency.example"}},
	}, AuthservID: "mx.platform.example"}
	to := "To: returns+acme@platform.example"
	for _, c := range []struct {
		name  string
		dmarc bool
		h     textproto.Header
		code  outcome.QuarantineCode // "" taken
	}{
		{"AnAllowedSender", false, header("From: Ops <OPS@Acme.Example>", to), ""},
		{"AnotherSender", false, header("From: mallory@evil.example", to), outcome.SenderNotAllowed},
		{"ASubdomainIsAnotherSender", false, header("From: x@mail.acme.example.evil", to), outcome.SenderNotAllowed},
		{"NoFrom", false, header(to), outcome.SenderNotAllowed},
		{"TwoFroms", false, header("From: a@acme.example, b@acme.example", to), outcome.SenderNotAllowed},
		{"AnyRouteOfTheBrandAllows", false, header("From: partner@agency.example", "To: returns+acme@platform.example, returns+acme2@platform.example"), ""},
		{"NoRoute", false, header("From: a@acme.example", "To: x@y.example"), outcome.NoRoute},
		{"DMARCPass", true, header("Authentication-Results: mx.platform.example 1; dmarc=pass (p=reject dis=none) header.from=acme.example", "From: a@acme.example", to), ""},
		{"DMARCPassWithoutHeaderFrom", true, header("Authentication-Results: MX.platform.example; dkim=pass; dmarc=pass", "From: a@acme.example", to), ""},
		{"DMARCFail", true, header("Authentication-Results: mx.platform.example; dmarc=fail header.from=acme.example", "From: a@acme.example", to), outcome.SenderNotAuthenticated},
		{"DMARCPassForAnotherDomain", true, header("Authentication-Results: mx.platform.example; dmarc=pass header.from=evil.example", "From: a@acme.example", to), outcome.SenderNotAuthenticated},
		{"NoAuthenticationResults", true, header("From: a@acme.example", to), outcome.SenderNotAuthenticated},
		{"AForeignAuthservIDIsIgnored", true, header("Authentication-Results: evil.example; dmarc=pass header.from=acme.example", "From: a@acme.example", to), outcome.SenderNotAuthenticated},
		{"OnlyTheTopmostOfOursCounts", true, header(
			"Authentication-Results: mx.platform.example; dmarc=fail header.from=acme.example",
			"Authentication-Results: mx.platform.example; dmarc=pass header.from=acme.example",
			"From: a@acme.example", to), outcome.SenderNotAuthenticated},
		{"ACommentCannotFakeAPass", true, header("Authentication-Results: mx.platform.example; dmarc=fail (dmarc=pass; spoofed) header.from=acme.example", "From: a@acme.example", to), outcome.SenderNotAuthenticated},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg.RequireDMARC = c.dmarc
			v := judge(cfg, c.h)
			var got outcome.QuarantineCode
			if v.refusal != nil {
				got = v.refusal.Code
			}
			if got != c.code {
				t.Errorf("refusal %+v; want %q", v.refusal, c.code)
			}
		})
	}
}

func TestParseAuthResults(t *testing.T) {
	id, res := parseAuthResults(`mx.example.org 1; (a comment; with semicolons)
		spf=pass smtp.mailfrom="a;b@example.net"; dkim/1=pass header.d=example.net (sig ok); dmarc=PASS header.from=example.net; none`)
	if id != "mx.example.org" || len(res) != 3 {
		t.Fatalf("%q %+v", id, res)
	}
	if res[0].method != "spf" || res[0].props["smtp.mailfrom"] != "a;b@example.net" {
		t.Errorf("spf %+v", res[0])
	}
	if res[1].method != "dkim" || res[1].result != "pass" || res[2].method != "dmarc" || res[2].result != "pass" ||
		res[2].props["header.from"] != "example.net" {
		t.Errorf("%+v", res)
	}
}

// FuzzWalkMessage checks, for any bytes, that reading a message never panics
// and that every file it lists can be copied out with exactly its listed size.
func FuzzWalkMessage(f *testing.F) {
	f.Add([]byte(nestedMessage))
	// The mail corpus of the conformance suite, as mail clients write it.
	corpus, _ := filepath.Glob("../sourcetest/testdata/mail/*.eml")
	if len(corpus) == 0 {
		f.Fatal("no mail corpus in ../sourcetest/testdata/mail")
	}
	for _, name := range corpus {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	}
	f.Add([]byte("Content-Type: text/csv\r\n\r\na,b\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\nContent-Disposition: attachment; filename*=utf-8''%C3%A9.csv\r\n\r\n1\r\n--y--\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := readMessage(bytes.NewReader(msg), true)
		if err != nil {
			t.Fatalf("a message in memory is never a read error: %v", err)
		}
		if r.size != int64(len(msg)) {
			t.Fatalf("size %d; want %d", r.size, len(msg))
		}
		if r.malformed != "" {
			return
		}
		for _, p := range r.parts {
			var buf bytes.Buffer
			if err := copyPart(&buf, bytes.NewReader(msg), p.id); err != nil {
				t.Fatalf("part %s: %v", p.id, err)
			}
			if int64(buf.Len()) != p.size {
				t.Fatalf("part %s: copied %d bytes, listed %d", p.id, buf.Len(), p.size)
			}
		}
	})
}

// TestOnlyTheDataPartsOfAMessageAreFiles decides, part by part, what mail
// clients attach: a data file, or something else named in the reply.
func TestOnlyTheDataPartsOfAMessageAreFiles(t *testing.T) {
	for _, c := range []struct {
		name   string
		header string
		file   string // the file's name when it is data
		kind   string // what it is when it is not
	}{
		{"ACSVAttachment", "Content-Type: text/csv; name=returns.csv\r\nContent-Disposition: attachment; filename=returns.csv", "returns.csv", ""},
		{"AnUnnamedCSVAsEver", "Content-Type: text/csv", "attachment-2.csv", ""},
		{"AnUnnamedXLSX", "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "attachment-2.xlsx", ""},
		{"AnInlineCSVOfAppleMail", "Content-Type: text/csv; x-unix-mode=0644; name=returns.csv\r\nContent-Disposition: inline; filename=returns.csv", "returns.csv", ""},
		{"ACSVThatOutlookCallsExcel", "Content-Type: application/vnd.ms-excel; name=\"returns.csv\"\r\nContent-Disposition: attachment; filename=\"returns.csv\"", "returns.csv", ""},
		{"AGmailCSVWithAContentID", "Content-Type: text/csv; charset=\"US-ASCII\"; name=\"returns.csv\"\r\nContent-Disposition: attachment; filename=\"returns.csv\"\r\nContent-ID: <f_m1abc0>", "returns.csv", ""},
		{"AnOctetStreamZip", "Content-Type: application/octet-stream; name=returns.zip", "returns.zip", ""},
		{"AnERPsDatFile", "Content-Type: application/octet-stream; name=RETURNS.DAT", "RETURNS.DAT", ""},
		{"ADataNameWinsOverAWrongType", "Content-Type: image/png; name=returns.csv", "returns.csv", ""},
		{"OutlooksSignatureLogo", "Content-Type: image/png; name=\"image001.png\"\r\nContent-Description: image001.png\r\nContent-Disposition: inline; filename=\"image001.png\"\r\nContent-ID: <image001.png@01DA1234.56789AB0>", "", "inline image"},
		{"APictureAttached", "Content-Type: image/jpeg; name=photo.jpg\r\nContent-Disposition: attachment; filename=photo.jpg", "", "image"},
		{"APictureAsOctetStream", "Content-Type: application/octet-stream; name=scan.PNG\r\nContent-Disposition: attachment; filename=scan.PNG", "", "image"},
		{"ThunderbirdsOpenPGPKey", "Content-Type: application/pgp-keys; name=\"OpenPGP_0x3F1A2B3C4D5E6F70.asc\"\r\nContent-Disposition: attachment; filename=\"OpenPGP_0x3F1A2B3C4D5E6F70.asc\"\r\nContent-Description: OpenPGP public key", "", "OpenPGP key"},
		{"AnSMIMESignatureOutsideMultipartSigned", "Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Disposition: attachment; filename=smime.p7s", "", "signature"},
		{"AnEncryptedSMIMEMessage", "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m", "", "encrypted message"},
		{"AVCard", "Content-Type: text/vcard; name=\"Acme Returns.vcf\"\r\nContent-Disposition: attachment; filename=\"Acme Returns.vcf\"", "", "contact card"},
		{"AVCardAsOctetStream", "Content-Type: application/octet-stream; name=\"card.vcf\"", "", "contact card"},
		{"AGmailInvite", "Content-Type: application/ics; name=\"invite.ics\"\r\nContent-Disposition: attachment; filename=\"invite.ics\"", "", "calendar invite"},
		{"OutlooksWinmailDat", "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"", "", "Outlook rich-text wrapper, TNEF"},
		{"AWinmailDatAsOctetStream", "Content-Type: application/octet-stream; name=\"WINMAIL.DAT\"", "", "Outlook rich-text wrapper, TNEF"},
		{"ACoverLetter", "Content-Type: application/pdf; name=\"letter.pdf\"", "", "document"},
		{"AnExchangeBodyFragment", "Content-Type: text/plain; charset=us-ascii; name=\"ATT00001.txt\"\r\nContent-Disposition: attachment; filename=\"ATT00001.txt\"", "", "message text"},
		{"AnOutlookItem", "Content-Type: application/vnd.ms-outlook; name=\"Returns.msg\"\r\nContent-Disposition: attachment; filename=\"Returns.msg\"", "", "attached message, not opened"},
		{"AnUnnamedAttachment", "Content-Type: application/octet-stream\r\nContent-Disposition: attachment", "", "application/octet-stream"},
		{"AnUnnamedInlinePictureIsTheTexts", "Content-Type: image/gif\r\nContent-ID: <logo>", "", ""},
		{"TheTextIsNotAPart", "Content-Type: text/html; charset=utf-8", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
				"--b\r\n" + c.header + "\r\n\r\nbody\r\n--b--\r\n"
			r, err := readMessage(strings.NewReader(msg), true)
			if err != nil || r.malformed != "" {
				t.Fatalf("%v %s", err, r.malformed)
			}
			var files, kinds []string
			for _, p := range r.parts {
				files = append(files, p.name)
			}
			for _, p := range r.ignored {
				kinds = append(kinds, p.kind)
			}
			if !slices.Equal(files, nonEmpty(c.file)) || !slices.Equal(kinds, nonEmpty(c.kind)) {
				t.Errorf("files %q, ignored %q; want %q, %q", files, kinds, nonEmpty(c.file), nonEmpty(c.kind))
			}
		})
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func TestAnEncryptedMessageIsOneIgnoredPart(t *testing.T) {
	msg := "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=e\r\n\r\n" +
		"--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n" +
		"--e\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n--e--\r\n"
	r, err := readMessage(strings.NewReader(msg), true)
	if err != nil || len(r.parts) != 0 || len(r.ignored) != 1 || r.ignored[0].String() != "an unnamed part (encrypted message)" {
		t.Fatalf("%v %+v", err, r)
	}
}

func TestAnIgnoredPartIsShownEscaped(t *testing.T) {
	p := ignoredPart{id: "2", name: "M\xe4rz\x1b.png", kind: "image"}
	if got := p.String(); got != `M\xe4rz\x1b.png (image)` {
		t.Errorf("%q", got)
	}
}
