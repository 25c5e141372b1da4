// Package imaptest starts IMAP servers for tests: an in-process one
// (go-imap's imapmemserver, fast) and Debian's real Dovecot on free loopback
// ports with its own config, users and maildir in a temporary folder. Both
// take TLS from the first byte on Addr and STARTTLS on StartTLSAddr, with a
// certificate from a CA of their own (CAFile), and one user.
//
// A test drives the server's mailboxes through the Server's own methods
// (Append, Messages, Recreate), which speak IMAP to it like any mail client,
// so one test runs unchanged against either server.
package imaptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/returnsd/returnsd/internal/tlstest"
)

// Dovecot is where Debian's dovecot-core package puts the daemon.
const Dovecot = "/usr/sbin/dovecot"

// Server is a running IMAP server.
type Server struct {
	Addr         string // implicit TLS
	StartTLSAddr string // plain, STARTTLS required before login
	User         string
	Password     string
	PasswordFile string // holds Password
	CAFile       string // PEM of the CA that signed the server's certificate
	Dir          string // a temporary folder holding the above

	ca   *tlstest.CA
	stop func() error
	// traffic is what a NoTLS in-process server received and sent, for tests
	// that must show something was never said (a password in clear).
	traffic *lockedBuffer
}

// Stop stops the server and removes its folder.
func (s *Server) Stop() error {
	err := s.stop()
	os.RemoveAll(s.Dir)
	return err
}

// Traffic is everything a NoTLS in-process server received and sent.
func (s *Server) Traffic() string {
	if s.traffic == nil {
		return ""
	}
	return s.traffic.String()
}

// newServerDir makes the folder with a CA, the server's certificate and the password file.
func newServerDir() (*Server, *tlstest.ServerCert, error) {
	dir, err := os.MkdirTemp("", "returnsd-imap-")
	if err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // Dovecot's own users read it
		os.RemoveAll(dir)
		return nil, nil, err
	}
	s := &Server{Dir: dir, User: "returnsd", Password: "imap-secret"}
	fail := func(err error) (*Server, *tlstest.ServerCert, error) {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	if s.ca, err = tlstest.NewCA("imaptest CA"); err != nil {
		return fail(err)
	}
	cert, err := s.ca.Issue()
	if err != nil {
		return fail(err)
	}
	if s.CAFile, err = s.ca.WriteCA(dir, "ca.pem"); err != nil {
		return fail(err)
	}
	s.PasswordFile = filepath.Join(dir, "password")
	if err := os.WriteFile(s.PasswordFile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	return s, cert, nil
}

// InProcessOptions change the in-process server.
type InProcessOptions struct {
	// NoMove makes it an IMAP4rev1 server without MOVE and UIDPLUS, as some
	// servers still are: clients must COPY, flag \Deleted and EXPUNGE.
	NoMove bool
	// NoTLS serves plain IMAP without STARTTLS on StartTLSAddr (Addr is unused),
	// allowing LOGIN in clear: a server a client must refuse.
	NoTLS bool
}

// StartInProcess starts go-imap's in-memory server in this process.
func StartInProcess(opts InProcessOptions) (*Server, error) {
	s, cert, err := newServerDir()
	if err != nil {
		return nil, err
	}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(s.User, s.Password)
	if err := u.Create("INBOX", nil); err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	mem.AddUser(u)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	if opts.NoMove {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}}
	}
	srvOpts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:      caps,
		TLSConfig: tlsCfg,
		Logger:    log.New(io.Discard, "", 0),
	}
	if opts.NoTLS {
		s.traffic = &lockedBuffer{}
		srvOpts.TLSConfig, srvOpts.InsecureAuth, srvOpts.DebugWriter = nil, true, s.traffic
	}
	srv := imapserver.New(srvOpts)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	implicit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		plain.Close()
		os.RemoveAll(s.Dir)
		return nil, err
	}
	s.StartTLSAddr, s.Addr = plain.Addr().String(), implicit.Addr().String()
	listeners := []net.Listener{plain, tls.NewListener(implicit, tlsCfg)}
	var wg sync.WaitGroup
	for _, ln := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Serve(ln)
		}()
	}
	s.stop = func() error {
		// imapserver's Close closes only the listeners whose Serve has begun
		// (a Serve after it returns at once, leaving its listener open): the
		// listeners are ours to close.
		var closeErr error
		var closed sync.WaitGroup
		closed.Add(1)
		go func() {
			defer closed.Done()
			closeErr = srv.Close()
			for _, ln := range listeners {
				ln.Close()
			}
			wg.Wait()
		}()
		if err := waitWithin(&closed, stopTimeout, "the in-process server"); err != nil {
			return err
		}
		return closeErr
	}
	return s, nil
}

// stopTimeout bounds how long Stop waits for a server to end: a server that
// does not is an error, not a hang.
const stopTimeout = 10 * time.Second

// waitWithin waits for wg, or fails after d.
func waitWithin(wg *sync.WaitGroup, d time.Duration, what string) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("imaptest: %s did not end within %s of Stop", what, d)
	}
}

// StartDovecot starts Debian's Dovecot (Dovecot) on two free loopback ports
// (implicit TLS and STARTTLS; ssl = required, so no login in clear) with a
// passwd-file user whose mail is a maildir in the server's folder. It must
// run as root (Dovecot's master process drops to its own users) and needs the
// dovecot-imapd package; without it the error says so: tests fail, they never
// skip. scripts/test installs it.
func StartDovecot() (*Server, error) {
	if _, err := os.Stat(Dovecot); err != nil {
		return nil, fmt.Errorf("Dovecot not installed (%s: %w); install dovecot-imapd (scripts/test does)", Dovecot, err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("Dovecot must be started as root (its master process runs its services as its own users)")
	}
	mailUser, err := user.Lookup("dovecot")
	if err != nil {
		return nil, fmt.Errorf("Dovecot's system user: %w", err)
	}
	s, cert, err := newServerDir()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	uid, _ := strconv.Atoi(mailUser.Uid)
	gid, _ := strconv.Atoi(mailUser.Gid)
	mailDir := filepath.Join(s.Dir, "mail")
	for _, d := range []string{mailDir, filepath.Join(s.Dir, "run"), filepath.Join(s.Dir, "state")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.Chown(mailDir, uid, gid); err != nil {
		return fail(err)
	}
	files := map[string][]byte{
		"cert.pem": cert.CertPEM,
		"key.pem":  cert.KeyPEM,
		"passwd":   []byte(fmt.Sprintf("%s:{PLAIN}%s::::::\n", s.User, s.Password)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return fail(err)
		}
	}
	// The auth service reads the users as Dovecot's own user.
	if err := os.Chown(filepath.Join(s.Dir, "passwd"), uid, gid); err != nil {
		return fail(err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return fail(err)
	}
	s.StartTLSAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.Addr = fmt.Sprintf("127.0.0.1:%d", ports[1])
	d := s.Dir
	conf := strings.Join([]string{
		"base_dir = " + filepath.Join(d, "run"),
		"state_dir = " + filepath.Join(d, "state"),
		"instance_name = returnsd-test-" + filepath.Base(d),
		"log_path = " + filepath.Join(d, "dovecot.log"),
		"protocols = imap",
		"listen = 127.0.0.1",
		"ssl = required",
		"ssl_cert = <" + filepath.Join(d, "cert.pem"),
		"ssl_key = <" + filepath.Join(d, "key.pem"),
		"ssl_min_protocol = TLSv1.2",
		"disable_plaintext_auth = yes",
		"auth_mechanisms = plain login",
		"default_internal_user = dovecot",
		"default_login_user = dovenull",
		"first_valid_uid = " + mailUser.Uid,
		"mail_location = maildir:~/Maildir",
		"mail_max_userip_connections = 1000",
		"passdb {",
		"  driver = passwd-file",
		"  args = scheme=PLAIN username_format=%u " + filepath.Join(d, "passwd"),
		"}",
		"userdb {",
		"  driver = static",
		fmt.Sprintf("  args = uid=%s gid=%s home=%s/%%u", mailUser.Uid, mailUser.Gid, mailDir),
		"}",
		"service imap-login {",
		"  inet_listener imap {",
		"    address = 127.0.0.1",
		fmt.Sprintf("    port = %d", ports[0]),
		"  }",
		"  inet_listener imaps {",
		"    address = 127.0.0.1",
		fmt.Sprintf("    port = %d", ports[1]),
		"    ssl = yes",
		"  }",
		"}",
	}, "\n") + "\n"
	confFile := filepath.Join(d, "dovecot.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	cmd := exec.Command(Dovecot, "-F", "-c", confFile)
	out, err := os.Create(filepath.Join(d, "stderr.log"))
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fail(fmt.Errorf("start dovecot: %w", err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); out.Close() }()
	s.stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM) // the master stops its services
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		return nil
	}
	// Ready when a login works (the auth service starts after the listeners).
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := s.admin(func(*imapclient.Client) error { return nil })
		if err == nil {
			return s, nil
		}
		select {
		case err := <-exited:
			exited <- err
			logs, _ := os.ReadFile(filepath.Join(d, "dovecot.log"))
			stderr, _ := os.ReadFile(filepath.Join(d, "stderr.log"))
			os.RemoveAll(d)
			return nil, fmt.Errorf("dovecot exited: %v: %s%s", err, stderr, logs)
		default:
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(d, "dovecot.log"))
			s.Stop()
			return nil, fmt.Errorf("dovecot did not take a login on %s within 15s: %v\n%s", s.Addr, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// adminTimeout bounds one admin session (Append, Messages ...): a server that
// hangs fails the test's call instead of stalling the run.
const adminTimeout = time.Minute

// admin runs fn on a fresh logged-in connection (implicit TLS, the server's
// CA), closing the connection if it takes longer than adminTimeout.
func (s *Server) admin(fn func(*imapclient.Client) error) error {
	c, err := imapclient.DialTLS(s.Addr, &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: s.ca.Pool(), ServerName: "127.0.0.1"},
		Dialer:    &net.Dialer{Timeout: 10 * time.Second},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	var expired atomic.Bool
	watchdog := time.AfterFunc(adminTimeout, func() { expired.Store(true); c.Close() })
	defer watchdog.Stop()
	err = func() error {
		if err := c.Login(s.User, s.Password).Wait(); err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		return c.Logout().Wait()
	}()
	if err != nil && expired.Load() {
		return fmt.Errorf("imaptest: the server did not answer within %s: %w", adminTimeout, err)
	}
	return err
}

// Append puts msg into mailbox (created if missing) with the arrival time
// date (INTERNALDATE), as a mail server delivering it would.
func (s *Server) Append(mailbox string, msg []byte, date time.Time) error {
	return s.admin(func(c *imapclient.Client) error {
		if err := create(c, mailbox); err != nil {
			return err
		}
		cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Time: date})
		if _, err := cmd.Write(msg); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
}

// Create makes mailbox, unless it exists.
func (s *Server) Create(mailbox string) error {
	return s.admin(func(c *imapclient.Client) error { return create(c, mailbox) })
}

// Message is a message as a mail client sees it.
type Message struct {
	UID   uint32
	Flags []string
	Date  time.Time // INTERNALDATE
	Body  []byte
}

// Seen reports whether the message is flagged \Seen.
func (m Message) Seen() bool { return slices.Contains(m.Flags, string(imap.FlagSeen)) }

// Messages returns the messages of mailbox (none if it does not exist),
// oldest first, read with BODY.PEEK so reading them changes nothing.
func (s *Server) Messages(mailbox string) ([]Message, error) {
	var out []Message
	err := s.admin(func(c *imapclient.Client) error {
		data, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
				return nil // no such mailbox
			}
			return err
		}
		if data.NumMessages == 0 {
			return nil
		}
		msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true,
			InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			msg := Message{UID: uint32(m.UID), Date: m.InternalDate}
			for _, f := range m.Flags {
				msg.Flags = append(msg.Flags, string(f))
			}
			if len(m.BodySection) > 0 {
				msg.Body = m.BodySection[0].Bytes
			}
			out = append(out, msg)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Message) int { return int(a.UID) - int(b.UID) })
	return out, err
}

// Recreate deletes mailbox and creates it again, empty, with a new
// UIDVALIDITY: what a restored or migrated mailbox looks like to a client.
func (s *Server) Recreate(mailbox string) error {
	return s.admin(func(c *imapclient.Client) error {
		if err := c.Delete(mailbox).Wait(); err != nil {
			return err
		}
		return c.Create(mailbox, nil).Wait()
	})
}

// UIDValidity returns the mailbox's UIDVALIDITY.
func (s *Server) UIDValidity(mailbox string) (uint32, error) {
	var v uint32
	err := s.admin(func(c *imapclient.Client) error {
		data, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return err
		}
		v = data.UIDValidity
		return nil
	})
	return v, err
}

// create makes mailbox unless it exists. Dovecot (maildir) now and then
// answers a CREATE made while other sessions create mailboxes with
// ALREADYEXISTS for a mailbox that LIST does not show; it is tried again.
func create(c *imapclient.Client, mailbox string) error {
	for try := 0; ; try++ {
		list, err := c.List("", mailbox, nil).Collect()
		if err != nil {
			return err
		}
		for _, l := range list {
			if l.Mailbox == mailbox {
				return nil
			}
		}
		err = c.Create(mailbox, nil).Wait()
		var ie *imap.Error
		if err == nil || try == 5 || !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for the server's connections to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
