// Package smtptest is an SMTP server for tests (go-smtp's, in this process): it
// takes mail over implicit TLS on Addr and over STARTTLS on StartTLSAddr, with
// a certificate from its own CA (CAFile), requires AUTH PLAIN as User with
// Password, and keeps what it received for the test to inspect.
package smtptest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/returnsd/returnsd/internal/tlstest"
)

// Mail is one message the server received.
type Mail struct {
	From string   // MAIL FROM
	To   []string // RCPT TO
	Data []byte   // the message as sent
}

// Server is a running SMTP server.
type Server struct {
	Addr         string // implicit TLS
	StartTLSAddr string // plain, offering STARTTLS
	User         string
	Password     string
	CAFile       string // PEM of the CA that signed the server's certificate
	Dir          string

	srv       *smtp.Server
	listeners []net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	mail      []Mail
	got       chan struct{} // signalled on each received mail
	refusing  bool          // see Refuse
	refused   int
}

// Refuse makes the server answer every MAIL FROM with 451 (try again later),
// as a server that is down for a while does, until Refuse(false).
func (s *Server) Refuse(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusing = on
}

// Refused is how many messages the server refused (see Refuse).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Start starts a server on two free loopback ports.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "returnsd-smtp-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, User: "returnsd", Password: "smtp-secret", got: make(chan struct{}, 1)}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	ca, err := tlstest.NewCA("smtptest CA")
	if err != nil {
		return fail(err)
	}
	cert, err := ca.Issue()
	if err != nil {
		return fail(err)
	}
	if s.CAFile, err = ca.WriteCA(dir, "ca.pem"); err != nil {
		return fail(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = tlsCfg
	s.srv.ReadTimeout, s.srv.WriteTimeout = time.Minute, time.Minute
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	implicit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		plain.Close()
		return fail(err)
	}
	s.StartTLSAddr, s.Addr = plain.Addr().String(), implicit.Addr().String()
	s.listeners = []net.Listener{plain, tls.NewListener(implicit, tlsCfg)}
	for _, ln := range s.listeners {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.srv.Serve(ln)
		}()
	}
	return s, nil
}

// stopTimeout bounds how long Stop waits for the accept loops to end.
const stopTimeout = 10 * time.Second

// Stop closes the server and its connections and removes its folder. It
// closes the listeners itself: go-smtp's Close closes only the listeners
// whose Serve has begun, so a Stop right after Start would leave a loop that
// starts later accepting for ever. A loop that still does not end within
// stopTimeout is an error, not a hang.
func (s *Server) Stop() error {
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	for _, ln := range s.listeners {
		ln.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		err = errors.Join(err, fmt.Errorf("smtptest: the server's accept loops did not end within %s of Stop", stopTimeout))
	}
	os.RemoveAll(s.Dir)
	return err
}

// Mail returns the messages received so far, oldest first.
func (s *Server) Mail() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mail)
}

// WaitMail waits until at least n messages were received, or timeout passes,
// and returns what was received.
func (s *Server) WaitMail(n int, timeout time.Duration) []Mail {
	deadline := time.After(timeout)
	for {
		if m := s.Mail(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-deadline:
			return s.Mail()
		}
	}
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != ss.s.User || password != ss.s.Password {
			return errors.New("invalid username or password")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.refusing {
		ss.s.refused++
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "smtptest: refusing mail for now"}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.mail = append(ss.s.mail, Mail{From: ss.from, To: ss.to, Data: b})
	ss.s.mu.Unlock()
	select {
	case ss.s.got <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }
