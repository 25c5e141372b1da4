package demo

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/returnsd/returnsd/ingest/imap/imaptest"
	"github.com/returnsd/returnsd/ingest/sftp/sshtest"
	"github.com/returnsd/returnsd/mailer/smtptest"
)

// Addresses of the mail routes (the platform's shared mailbox).
const (
	acmeRecipient   = "returns+acme@platform.example"
	globexRecipient = "returns+globex@platform.example"
)

// servers are the demo's servers, in this process on loopback, and its folders.
type servers struct {
	sftp *sshtest.Server   // acme's SFTP server; it serves this machine's files
	imap *imaptest.Server  // the platform's returns mailbox
	smtp *smtptest.Server  // where replies to mailed files go
	dirs map[string]string // a source's folder by source name (sftp: the path on the server)
	// results is where each folder source puts its result files.
	results map[string]string
	// The files the config names, copies in the work folder (the servers
	// keep theirs in folders of their own, gone when they stop).
	knownHosts, sftpKey, imapPass, imapCA, smtpPass, smtpCA string
}

// startServers starts the SFTP, IMAP and SMTP servers and makes the folders.
func startServers(work string) (_ *servers, err error) {
	s := &servers{
		dirs: map[string]string{
			sourceSFTP: filepath.Join(work, "sftp", "acme", "outbound"),
			sourceDrop: filepath.Join(work, "drop", "globex"),
		},
		results: map[string]string{
			sourceSFTP: filepath.Join(work, "sftp", "acme", "results"),
			sourceDrop: filepath.Join(work, "drop", "globex", "results"),
		},
		knownHosts: filepath.Join(work, "known_hosts"),
		sftpKey:    filepath.Join(work, "acme_sftp_key"),
		imapPass:   filepath.Join(work, "imap_password"),
		imapCA:     filepath.Join(work, "imap_ca.pem"),
		smtpPass:   filepath.Join(work, "smtp_password"),
		smtpCA:     filepath.Join(work, "smtp_ca.pem"),
	}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	for _, d := range []map[string]string{s.dirs, s.results} {
		for _, dir := range d {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("demo: %w", err)
			}
		}
	}
	if s.sftp, err = sshtest.StartInProcess(); err != nil {
		return nil, fmt.Errorf("demo: start the SFTP server: %w", err)
	}
	// The host key is pinned: the source refuses a server whose key is not this one.
	line := knownhosts.Line([]string{knownhosts.Normalize(s.sftp.Addr)}, s.sftp.HostKey.PublicKey())
	if err := os.WriteFile(s.knownHosts, []byte(line+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if s.imap, err = imaptest.StartInProcess(imaptest.InProcessOptions{}); err != nil {
		return nil, fmt.Errorf("demo: start the IMAP server: %w", err)
	}
	if s.smtp, err = smtptest.Start(); err != nil {
		return nil, fmt.Errorf("demo: start the SMTP server: %w", err)
	}
	if err := os.WriteFile(s.smtpPass, []byte(s.smtp.Password+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	for from, to := range map[string]string{s.sftp.KeyFile: s.sftpKey, s.imap.PasswordFile: s.imapPass,
		s.imap.CAFile: s.imapCA, s.smtp.CAFile: s.smtpCA} {
		if err := copyFile(from, to); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	return s, nil
}

// stop stops the servers that were started.
func (s *servers) stop() {
	if s.sftp != nil {
		s.sftp.Stop()
	}
	if s.imap != nil {
		s.imap.Stop()
	}
	if s.smtp != nil {
		s.smtp.Stop()
	}
}

// writeConfig writes the demo's config: the embedded example config (its
// brands acme and globex, limits, logging), with the three sources, the SMTP
// server, the schedules of the demo and its listener. It returns its path.
func (s *servers) writeConfig(work, listen string) (string, error) {
	yaml := example
	for _, r := range []struct{ from, to string }{
		{`  lifecycle: "5 * * * *"`, `  lifecycle: "` + lifecycleEvery + `"`},
		{"  listen: 127.0.0.1:8080", "  listen: " + listen},
		{"shutdown_timeout: 1m", "shutdown_timeout: 10s"},
	} {
		if !strings.Contains(yaml, r.from) {
			return "", fmt.Errorf("demo: the embedded example config has no %q any more: update the demo", r.from)
		}
		yaml = strings.Replace(yaml, r.from, r.to, 1)
	}
	q := func(s string) string { return fmt.Sprintf("%q", s) } // paths may hold anything
	yaml += fmt.Sprintf(`
# ---- added by returnsd demo: its servers, all on loopback in its own process ----
sources:
  - name: %[1]s            # acme's SFTP server
    brand: acme
    type: sftp
    address: %[4]s
    username: %[5]s
    private_key_file: %[6]s
    known_hosts: %[7]s
    path: %[8]s
    result_path: %[9]s
    schedule: %[10]q
    stable_wait: 1s
    min_age: 1s
  - name: %[2]s          # a folder of this machine globex's files arrive in
    brand: globex
    type: localdir
    path: %[11]s
    result_path: %[12]s
    schedule: %[10]q
    stable_wait: 1s
    min_age: 1s
  - name: %[3]s        # the platform's mailbox, one address per brand
    type: imap
    address: %[13]s
    ca_file: %[14]s
    username: %[15]s
    password_file: %[16]s
    schedule: %[10]q
    min_age: 1s
    routes:
      - {recipient: %[17]s, brand: acme, senders: ["*@acme.example"]}
      - {recipient: %[18]s, brand: globex, senders: ["*@globex.example"]}
smtp:                                 # results of mailed files go back through it
  address: %[19]s
  ca_file: %[20]s
  username: %[21]s
  password_file: %[22]s
  from: returnsd <returns@platform.example>
spool_dir: %[23]s
`, sourceSFTP, sourceDrop, sourceMail,
		s.sftp.Addr, s.sftp.User, q(s.sftpKey), q(s.knownHosts), q(s.dirs[sourceSFTP]), q(s.results[sourceSFTP]), pollEvery,
		q(s.dirs[sourceDrop]), q(s.results[sourceDrop]),
		s.imap.Addr, q(s.imapCA), s.imap.User, q(s.imapPass), acmeRecipient, globexRecipient,
		s.smtp.Addr, q(s.smtpCA), s.smtp.User, q(s.smtpPass),
		q(filepath.Join(work, "spool")))
	path := filepath.Join(work, "returnsd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return path, nil
}

func (s *servers) print(w io.Writer, cfgPath string) {
	section(w, "Servers, in this process on loopback")
	fmt.Fprintf(w, "  SFTP  %-16s acme's server (pkg/sftp); its host key pinned in %s\n", s.sftp.Addr, s.knownHosts)
	fmt.Fprintf(w, "        acme puts its files in %s\n", s.dirs[sourceSFTP])
	fmt.Fprintf(w, "  IMAP  %-16s the platform's returns mailbox (go-imap, TLS): %s, %s\n", s.imap.Addr, acmeRecipient, globexRecipient)
	fmt.Fprintf(w, "  SMTP  %-16s where replies to mailed files go (go-smtp, TLS)\n", s.smtp.Addr)
	fmt.Fprintf(w, "  drop  %s, globex's folder on this machine\n", s.dirs[sourceDrop])
	fmt.Fprintf(w, "  config: %s\n", cfgPath)
}

// sentFile is an arrival once sent: where it went.
type sentFile struct {
	arrival
	at   string   // where it was put: a path, or the mailbox
	mail *message // for the mailed file
}

// deliver puts each file where its brand sends it: a file of acme's SFTP
// server or globex's drop folder, or a message in the mailbox. Files get
// times a few minutes back, one after the other, as if sent over the last
// minutes (the daemon takes them oldest first).
func (s *servers) deliver(files []arrival, now time.Time) ([]sentFile, error) {
	var out []sentFile
	for i, a := range files {
		at := now.Add(time.Duration(i-len(files)-5) * time.Minute)
		sf := sentFile{arrival: a}
		if a.source == sourceMail {
			m, err := readMail(a.fixture)
			if err != nil {
				return nil, err
			}
			if err := s.imap.Append("INBOX", m.raw, at); err != nil {
				return nil, fmt.Errorf("demo: deliver %s: %w", a.fixture, err)
			}
			sf.name, sf.mail, sf.at = m.attachment, m, "the mailbox, to "+acmeRecipient
			out = append(out, sf)
			continue
		}
		data, err := fixture(a.fixture)
		if err != nil {
			return nil, err
		}
		sf.name = a.fixture
		sf.at = filepath.Join(s.dirs[a.source], a.fixture)
		if err := os.WriteFile(sf.at, data, 0o644); err != nil {
			return nil, fmt.Errorf("demo: deliver %s: %w", a.fixture, err)
		}
		if err := os.Chtimes(sf.at, at, at); err != nil {
			return nil, fmt.Errorf("demo: deliver %s: %w", a.fixture, err)
		}
		out = append(out, sf)
	}
	return out, nil
}

// copyFile copies a secret or a certificate, readable by its owner only.
func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}
