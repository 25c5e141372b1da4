package sourcetest

import (
	"embed"
	"github.com/returnsd/returnsd/internal/filename"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/returnsd/returnsd/outcome"
)

// corpus holds messages shaped as Outlook, Gmail, Apple Mail, Thunderbird and
// an old ERP mailer write them; testdata/mail/README.md says where each
// shape comes from.
//
//go:embed testdata/mail/*.eml
var corpus embed.FS

// CorpusMessage returns the corpus message name (a file of testdata/mail)
// with CRLF line ends, as mail travels.
func CorpusMessage(t *testing.T, name string) string {
	t.Helper()
	b, err := corpus.ReadFile("testdata/mail/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return crlf(string(b))
}

// runMailCorpus runs the corpus cases of RunMail.
func runMailCorpus(t *testing.T, srv MailServer) {
	t.Run("OnlyTheDataFilesOfMailClientsMessagesAreTakenAndTheRestIsNamedInTheReply", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		type reply struct{ messageID, file, ignored string }
		want := map[string]reply{
			"outlook-signature-logo.eml": {"AM0PR07MB64171A2B3C4D5E6F7A8B9C0DA1B2C@AM0PR07MB6417.eurprd07.prod.outlook.com",
				"returns_kw12.csv", "ignored: image001.png (inline image)"},
			"apple-mail-smime-inline-csv.eml": {"7F3A9C2E-4B1D-4E8F-A6C5-D2B1E0F9A8C7@acme.example",
				"returns.csv", "ignored: smime.p7s (signature)"},
			"thunderbird-openpgp-signed-with-key.eml": {"3b2f8c1e-9d4a-4f6b-8e2c-1a7d5b9e3f60@acme.example",
				"retouren-0319.csv", "ignored: OpenPGP_0x3F1A2B3C4D5E6F70.asc (OpenPGP key), OpenPGP_signature.asc (signature)"},
			"gmail-forwarded-as-attachment.eml": {"CAF3kQx8mW5nH1sL0Zr8pT2bVd3Yx0Zr8pT2mW5nH1sL0a@mail.gmail.com",
				"lager-nord.csv", ""},
		}
		for name := range want {
			h.Deliver(Mail{Raw: CorpusMessage(t, name)}, time.Hour)
		}
		h.Poll()
		rep := h.Poll()
		if len(rep.Files) != len(want) {
			t.Errorf("report %+v; want the %d data files only", rep.Files, len(want))
		}
		for name, r := range want {
			h.WantStatus(rep, r.file, outcome.Completed)
			text, result := h.WantReplyText(acmeSender, r.messageID, resultOf(r.file))
			if !strings.Contains(result, "APPLIED") {
				t.Errorf("%s: result\n%s", name, result)
			}
			if r.ignored != "" && !strings.Contains(text, r.ignored) {
				t.Errorf("%s: the reply does not say %q:\n%s", name, r.ignored, text)
			}
			if r.ignored == "" && strings.Contains(text, "ignored:") {
				t.Errorf("%s: the reply names ignored parts it does not have:\n%s", name, text)
			}
		}
		for _, action := range []int{5001, 5002, 5003, 5009} {
			if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE action_id = $1 AND kind = 'REVERSE'", action); n != 1 {
				t.Errorf("%d reversals of %d", n, action)
			}
		}
		h.WantMailbox(h.Cfg.ProcessedMailbox, len(want))
		h.WantMailbox(h.Cfg.QuarantineMailbox, 0)
		h.WantMailbox(h.Cfg.Mailbox, 0)
	})

	t.Run("AMessageWithoutADataFileIsQuarantinedWithAReasonThatSaysWhatItHolds", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		want := map[string]string{
			"outlook-smime-signed-no-data.eml": "the message has no data file: it holds image001.png (inline image) and smime.p7s (signature); " +
				"attach the CSV/XLSX/ZIP/GZ file",
			"gmail-invite-and-vcard-no-data.eml": "the message has no data file: it holds invite.ics (calendar invite) and Anna Mueller.vcf (contact card); " +
				"attach the CSV/XLSX/ZIP/GZ file",
			"outlook-rich-text-winmail-dat.eml": "the message has no data file: it holds winmail.dat (Outlook rich-text wrapper, TNEF); " +
				"attach the CSV/XLSX/ZIP/GZ file",
		}
		for name := range want {
			h.Deliver(Mail{Raw: CorpusMessage(t, name)}, time.Hour)
		}
		h.Poll()
		rep := h.Poll()
		var reasons []string
		for _, f := range rep.Files {
			if !strings.HasSuffix(f.Name, ".eml") || f.Status != string(outcome.Quarantined) || f.Result.Code != outcome.NoAttachment {
				t.Errorf("%s: %s %s (%s); want a message quarantined as NO_ATTACHMENT", f.Name, f.Status, f.Result.Code, f.Result.Reason)
			}
			reasons = append(reasons, f.Result.Reason)
		}
		for name, reason := range want {
			found := false
			for _, r := range reasons {
				found = found || r == reason
			}
			if !found {
				t.Errorf("%s: no reason %q among %q", name, reason, reasons)
			}
		}
		h.WantMailbox(h.Cfg.QuarantineMailbox, len(want))
		if n := h.QueryInt("SELECT count(*) FROM ledger_events WHERE kind = 'REVERSE'"); n != 0 {
			t.Errorf("%d reversals", n)
		}
	})

	t.Run("FileNamesAreDecodedAsOutlookAndThunderbirdWriteThem", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{Raw: CorpusMessage(t, "thunderbird-rfc2231-continued-name.eml")}, time.Hour)
		h.Deliver(Mail{Raw: CorpusMessage(t, "outlook-rfc2047-names.eml")}, time.Hour)
		h.Poll()
		rep := h.Poll()
		continued := "Rücksendungen Kalenderwoche 13 Lager Nord und Süd.csv"
		for _, name := range []string{continued, "Retouren Köln März.csv", "Rückläufer.csv"} {
			h.WantStatus(rep, name, outcome.Completed)
		}
		h.WantReply(acmeSender, "8e1d2c3b-4a5f-4e6d-9c8b-7a6f5e4d3c2b@acme.example", resultOf(continued))
		h.WantReply(acmeSender, "DB9PR02MB72439A8B7C6D5E4F3A2B1C0D9E8F@DB9PR02MB7243.eurprd02.prod.outlook.com", resultOf("Rückläufer.csv"))
		h.WantMailbox(h.Cfg.ProcessedMailbox, 2)
	})
	t.Run("ARawEightBitFileNameKeepsItsBytesAndHoldsUpNoOtherFile", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		const raw = "Retouren M\xe4rz.csv" // Latin-1, as the ERP wrote it: not UTF-8
		h.Deliver(Mail{Raw: CorpusMessage(t, "erp-raw-8bit-name.eml")}, 2*time.Hour)
		other := h.Deliver(Mail{Files: []MailFile{{"beside.csv", ReturnsFile(5001, "beside")}}}, time.Hour)
		files, err := h.Src.List(h.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range files {
			names = append(names, f.Name)
		}
		if !slices.Contains(names, raw) {
			t.Fatalf("listed %q; want the name's own bytes %q", names, raw)
		}
		h.PollWith(h.Src)
		rep, pollErr := h.PollWith(h.Src)
		// The others of the poll flow, whatever becomes of the 8-bit name.
		h.WantStatus(rep, "Retouren-Summe.csv", outcome.Completed)
		h.WantStatus(rep, "beside.csv", outcome.Completed)
		h.WantReply("returns@globex.example", "20260331235501.4711@erp.globex.example", resultOf("Retouren-Summe.csv"))
		h.WantReply(acmeSender, other, resultOf("beside.csv"))
		for _, f := range rep.Files {
			if f.Name != raw && (f.Err != nil || f.AckErr != nil) {
				t.Errorf("%s: %v %v", f.Name, f.Err, f.AckErr)
			}
		}
		// Names are bytes end to end: the file is applied and answered, its
		// name shown escaped (the attachment's name written as valid UTF-8).
		h.WantStatus(rep, raw, outcome.Completed)
		if pollErr != nil {
			t.Errorf("poll: %v", pollErr)
		}
		text, _ := h.WantReplyText("returns@globex.example", "20260331235501.4711@erp.globex.example", "result_Retouren M_rz_*.csv")
		if !strings.Contains(text, `Retouren M\xe4rz.csv`) {
			t.Errorf("the reply does not show the name escaped:\n%s", text)
		}
		h.WantMailbox(h.Cfg.ProcessedMailbox, 2)
	})
	t.Run("ARawEightBitMessageIDHoldsUpNothing", func(t *testing.T) {
		t.Parallel()
		h := SetupMail(t, srv)
		h.Deliver(Mail{MessageID: "Retouren-M\xe4rz.4711@erp.acme.example", Files: []MailFile{{"erp.csv", ReturnsFile(5001, "erp")}}}, 2*time.Hour)
		h.Deliver(Mail{Files: []MailFile{{"beside.csv", ReturnsFile(5002, "beside")}}}, time.Hour)
		h.Poll()
		rep := h.Poll()
		h.WantStatus(rep, "erp.csv", outcome.Completed)
		h.WantStatus(rep, "beside.csv", outcome.Completed)
		h.WantReply(acmeSender, "", resultOf("erp.csv"))
		h.WantMailbox(h.Cfg.ProcessedMailbox, 2)
	})
}

// resultOf is the pattern of the result file's name of a file named name:
// results carry the received file's id too.
func resultOf(name string) string { return "result_" + filename.Stem(name) + "_*.csv" }
