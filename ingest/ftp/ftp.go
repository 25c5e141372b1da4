// Package ftp is the FTP/FTPS source: files in a folder on a brand's FTP server,
// over explicit (AUTH TLS) or implicit TLS with the server's certificate verified
// against ca_file or the system roots, or over plain FTP only when the source
// says insecure_plaintext: true.
//
// The connection is made on first use and kept; a lost connection is dropped and
// made again on the next call, and one idle for a while is checked with NOOP
// first (servers close idle sessions), so a poll does not fail on a connection
// the server dropped between polls. Every read and write on the control and data
// connections has a deadline (the source's timeout), and a cancelled context
// closes them, so no call outlives its context or hangs on a silent server.
//
// Data connections resume the control connection's TLS session, as servers that
// guard against data connection theft require (vsftpd's require_ssl_reuse,
// ProFTPD's default). See tlsConfig for what that takes with TLS 1.3.
package ftp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/netconn"
)

var _ ingest.Source = (*Source)(nil)

// DefaultTimeout bounds each network operation when the config gives none.
const DefaultTimeout = time.Minute

// idleCheck is how long a connection may sit unused before it is checked with
// NOOP before use. Servers drop idle sessions (vsftpd after 300s by default);
// polls are minutes apart.
const idleCheck = 15 * time.Second

// Source is a folder on an FTP server. Its zero value is not usable; call New.
type Source struct {
	cfg     config.Source
	timeout time.Duration
	now     func() time.Time
	// dial makes the TCP connections, control and data; tests put a proxy in.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// idleCheck is idleCheck; tests shorten it.
	idleCheck time.Duration

	mu     sync.Mutex
	conn   *conn // nil until connected, and after a reset
	closed bool
}

// New returns the source for cfg (an ftp source after WithDefaults). It does not
// connect: the first call that needs the server does.
func New(cfg *config.Source) *Source {
	timeout, ok := cfg.Timeout.Fixed()
	if !ok || timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &Source{cfg: *cfg, timeout: timeout, now: time.Now, dial: d.DialContext, idleCheck: idleCheck}
}

// List returns the regular files in the source's folder. It lists with MLSD
// where the server has it (exact sizes and times, in UTC), else with LIST, whose
// times are to the minute at best, and asks each file's time with MDTM.
func (s *Source) List(ctx context.Context) ([]ingest.File, error) {
	var out []ingest.File
	err := s.do(ctx, "list "+s.cfg.Path, func(c *conn) error {
		var err error
		if c.ftp.IsTimePreciseInList() {
			out, err = s.listMLSD(c)
		} else {
			out, err = s.listLIST(c)
		}
		return err
	})
	return out, err
}

// listMLSD lists with MLSD. jlaffaye/ftp reads any type it does not know as a
// file, and servers mark symbolic links with such types (ProFTPD's
// OS.unix=symlink and OS.unix=slink:target); so the lines it read are kept and
// their facts read here, and only type=file is taken.
func (s *Source) listMLSD(c *conn) ([]ingest.File, error) {
	var raw bytes.Buffer
	c.record = &raw
	_, err := c.ftp.List(s.cfg.Path)
	c.record = nil
	if err != nil {
		return nil, err
	}
	var out []ingest.File
	for line := range strings.Lines(raw.String()) {
		f, ok, err := parseMLSD(strings.TrimRight(line, "\r\n"))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		f.Path = path.Join(s.cfg.Path, f.Name)
		out = append(out, f)
	}
	return out, nil
}

// parseMLSD reads one MLSD line ("fact=value;...; name"). ok is false for
// anything but a regular file.
func parseMLSD(line string) (f ingest.File, ok bool, err error) {
	facts, name, found := strings.Cut(line, " ")
	if !found || name == "" {
		return f, false, nil // blank or not an entry
	}
	f.Name = name
	var haveSize, haveTime bool
	for fact := range strings.SplitSeq(facts, ";") {
		key, value, _ := strings.Cut(fact, "=")
		switch strings.ToLower(key) {
		case "type":
			if !strings.EqualFold(value, "file") {
				return f, false, nil
			}
			ok = true
		case "size":
			if f.Size, err = strconv.ParseInt(value, 10, 64); err != nil {
				return f, false, fmt.Errorf("MLSD line %q: bad size: %w", line, err)
			}
			haveSize = true
		case "modify":
			// YYYYMMDDHHMMSS[.sss], always UTC (RFC 3659).
			if f.ModTime, err = time.ParseInLocation("20060102150405.999999999", value, time.UTC); err != nil {
				return f, false, fmt.Errorf("MLSD line %q: bad time: %w", line, err)
			}
			haveTime = true
		}
	}
	if ok && (!haveSize || !haveTime) {
		return f, false, fmt.Errorf("MLSD line %q: no size or modify fact", line)
	}
	return f, ok, nil
}

// listLIST lists with LIST and asks each file's exact time with MDTM. LIST
// leaves out dot files on most servers (vsftpd): our own temporary uploads.
func (s *Source) listLIST(c *conn) ([]ingest.File, error) {
	entries, err := c.ftp.List(s.cfg.Path)
	if err != nil {
		return nil, err
	}
	var out []ingest.File
	for _, e := range entries {
		if e.Type != ftp.EntryTypeFile || e.Name == "." || e.Name == ".." {
			continue
		}
		f := ingest.File{Name: e.Name, Path: path.Join(s.cfg.Path, e.Name), Size: int64(e.Size), ModTime: e.Time}
		if c.ftp.IsGetTimeSupported() {
			t, err := c.ftp.GetTime(f.Path)
			if notFound(err) {
				continue // gone since the listing
			}
			if err != nil {
				return nil, fmt.Errorf("MDTM %s: %w", f.Name, err)
			}
			f.ModTime = t
		}
		out = append(out, f)
	}
	return out, nil
}

// Fetch streams the file to w (RETR).
func (s *Source) Fetch(ctx context.Context, f ingest.File, w io.Writer) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("ftp: %q is not a plain file name", f.Name)
	}
	return s.do(ctx, "fetch "+f.Name, func(c *conn) error {
		r, err := c.ftp.Retr(path.Join(s.cfg.Path, f.Name))
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			// Mid-transfer: the control connection still owes the transfer's
			// reply. Drop the connection rather than wait for it.
			c.broken = true
			return err
		}
		return r.Close() // reads the server's verdict: 226, or 426 if it failed
	})
}

// Put uploads the result file under a temporary (dot) name in the result folder
// and renames it into place. Servers rename over an existing file (rename(2));
// for one that refuses, the old result is deleted and the rename tried again.
func (s *Source) Put(ctx context.Context, f ingest.File, name string, r io.Reader) error {
	if !ingest.SafeName(name) {
		return fmt.Errorf("ftp: %q is not a plain file name", name)
	}
	dir := s.cfg.ResultPath
	tmp, final := path.Join(dir, "."+name+".tmp"), path.Join(dir, name)
	return s.do(ctx, "put "+name, func(c *conn) error {
		c.makeDirs(dir)
		if err := c.ftp.Stor(tmp, r); err != nil {
			if !c.broken && !lostConnection(err) {
				c.ftp.Delete(tmp)
			}
			return err
		}
		err := c.ftp.Rename(tmp, final)
		if err != nil && !lostConnection(err) {
			if c.ftp.Delete(final) == nil {
				err = c.ftp.Rename(tmp, final)
			}
		}
		if err != nil && !lostConnection(err) {
			c.ftp.Delete(tmp)
		}
		return err
	})
}

// Ack moves the file to processed/ or failed/ under the source's folder, deletes
// it, or leaves it, per the source's after setting. A file already gone is
// taken as acknowledged before.
func (s *Source) Ack(ctx context.Context, f ingest.File, d ingest.Disposition) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("ftp: %q is not a plain file name", f.Name)
	}
	if s.cfg.After == config.AfterLeave {
		return nil
	}
	from := path.Join(s.cfg.Path, f.Name)
	return s.do(ctx, "ack "+f.Name, func(c *conn) error {
		if s.cfg.After == config.AfterDelete {
			err := c.ftp.Delete(from)
			if err != nil && !lostConnection(err) {
				if there, serr := c.exists(from); serr == nil && !there {
					return nil
				}
			}
			return err
		}
		if there, err := c.exists(from); err != nil || !there {
			return err
		}
		folder := path.Join(s.cfg.Path, d.String())
		c.makeDirs(folder)
		to := path.Join(folder, f.Name)
		there, err := c.exists(to)
		if err != nil {
			return err
		}
		if there {
			// The brand sent a file of this name before: keep both. (A rename
			// would replace the older one on most servers.)
			to = path.Join(folder, ingest.ArchiveName(f.Name, s.now()))
		}
		err = c.ftp.Rename(from, to)
		if err != nil && !lostConnection(err) {
			if there, serr := c.exists(from); serr == nil && !there {
				return nil
			}
		}
		return err
	})
}

// Close says goodbye to the server and closes the connection. The source may
// not be used after.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		s.conn.ftp.Quit() // best effort; bounded by the deadlines
	}
	s.resetLocked()
	return nil
}

// conn is one control connection, logged in, and what it has learned.
type conn struct {
	ftp *ftp.ServerConn
	tls *tls.Config // nil for plain FTP; its session cache holds the control connection's session
	// ctx is the current call's context: data connections are dialled under it
	// (jlaffaye/ftp's dial function takes none).
	ctx      context.Context
	lastUsed time.Time
	dirs     map[string]bool // folders made (or found) on this connection
	// broken: an operation was cut off mid-transfer; the connection is dropped.
	broken bool
	// record, when set, receives a copy of what data connections read.
	record *bytes.Buffer

	mu      sync.Mutex // guards the TCP connections, closed from the context's goroutine
	control net.Conn
	data    net.Conn // the latest; jlaffaye/ftp closes each when its transfer ends
	aborted bool
}

// abort closes the connections at once: what a cancelled context or a reset does.
func (c *conn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted = true
	for _, r := range []net.Conn{c.control, c.data} {
		if r != nil {
			r.Close()
		}
	}
}

// track records a new TCP connection; after an abort it is closed at once.
func (c *conn) track(r net.Conn, control bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if control {
		c.control = r
	} else {
		c.data = r
	}
	if c.aborted {
		r.Close()
	}
}

// makeDirs makes dir and its parents (FTP has no mkdir -p), once per connection.
// Errors are ignored: most mean the folder exists, and the command that needs it
// reports the others.
func (c *conn) makeDirs(dir string) {
	if c.dirs[dir] {
		return
	}
	var parts []string
	for p := dir; p != "/" && p != "." && p != ""; p = path.Dir(p) {
		parts = append(parts, p)
	}
	// The folder itself first: it usually exists, or has a parent.
	if err := c.ftp.MakeDir(dir); err != nil && !lostConnection(err) {
		for i := len(parts) - 1; i >= 1; i-- {
			c.ftp.MakeDir(parts[i])
		}
		c.ftp.MakeDir(dir)
	}
	c.dirs[dir] = true
}

// exists reports whether a file exists: MLST where the server has it, else SIZE
// (binary mode). Only a 550 reply means no; anything else is an error.
func (c *conn) exists(p string) (bool, error) {
	var err error
	if c.ftp.IsTimePreciseInList() { // MLSD and MLST come together (FEAT MLST)
		_, err = c.ftp.GetEntry(p)
	} else {
		_, err = c.ftp.FileSize(p)
	}
	switch {
	case err == nil:
		return true, nil
	case notFound(err):
		return false, nil
	}
	return false, fmt.Errorf("check %s: %w", p, err)
}

// notFound reports a 550 reply ("file unavailable").
func notFound(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == ftp.StatusFileUnavailable && !lostConnection(err)
}

// do runs one operation on the connection (connecting first if needed). A
// cancelled ctx closes the connection, which ends the operation; an operation
// that lost the connection, or left it mid-transfer, resets it, so the next call
// connects again. A reply error (550 and the like) keeps it.
func (s *Source) do(ctx context.Context, op string, fn func(*conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("ftp: %s: source is closed", op)
	}
	c, err := s.connectLocked(ctx)
	if err != nil {
		return err
	}
	c.ctx = ctx
	stop := context.AfterFunc(ctx, c.abort)
	err = fn(c)
	c.ctx, c.lastUsed = context.Background(), time.Now()
	if !stop() || c.broken || lostConnection(err) || (err != nil && !isReply(err)) {
		s.resetLocked()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return fmt.Errorf("ftp: %s: %w", op, err)
	}
	return nil
}

func isReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// lostConnection reports an error of the network rather than a reply.
func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &netErr)
}

func (s *Source) resetLocked() {
	if s.conn == nil {
		return
	}
	s.conn.abort()
	s.conn = nil
}

// connectLocked returns the live connection, making one if there is none.
func (s *Source) connectLocked(ctx context.Context) (*conn, error) {
	if c := s.conn; c != nil {
		if time.Since(c.lastUsed) < s.idleCheck {
			return c, nil
		}
		c.ctx = ctx
		stop := context.AfterFunc(ctx, c.abort)
		err := c.ftp.NoOp()
		stopped := stop()
		if err == nil && stopped {
			return c, nil
		}
		s.resetLocked()
	}
	addr := s.cfg.Address
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	password, err := s.cfg.Password()
	if err != nil {
		return nil, fmt.Errorf("ftp: %w", err)
	}
	c := &conn{tls: tlsCfg, ctx: ctx, dirs: map[string]bool{}}
	opts := []ftp.DialOption{ftp.DialWithDialFunc(s.dialFunc(c))}
	switch {
	case tlsCfg != nil && s.cfg.TLS == config.TLSImplicit:
		opts = append(opts, ftp.DialWithTLS(tlsCfg))
	case tlsCfg != nil:
		opts = append(opts, ftp.DialWithExplicitTLS(tlsCfg))
	}
	stop := context.AfterFunc(ctx, c.abort)
	fc, err := ftp.Dial(addr, opts...)
	if err == nil {
		c.ftp = fc
		err = fc.Login(s.cfg.Username, password)
	}
	if !stop() {
		c.abort()
		return nil, fmt.Errorf("ftp: connect %s: %w", addr, ctx.Err())
	}
	if err != nil {
		c.abort()
		return nil, fmt.Errorf("ftp: connect %s: %w", addr, s.explainTLS(err))
	}
	c.lastUsed = time.Now()
	s.conn = c
	return c, nil
}

// dialFunc makes c's connections: the control connection first (with TLS from
// the first byte for implicit TLS; jlaffaye/ftp starts TLS itself after AUTH TLS),
// then data connections, with TLS per PROT P. Every one reads and writes with a
// deadline, and is closed when c is aborted.
func (s *Source) dialFunc(c *conn) func(network, addr string) (net.Conn, error) {
	control := true
	return func(network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(c.ctx, s.timeout)
		defer cancel()
		raw, err := s.dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.track(raw, control)
		dc := &netconn.DeadlineConn{Conn: raw, Timeout: s.timeout}
		if control {
			control = false
			if c.tls != nil && s.cfg.TLS == config.TLSImplicit {
				tc := tls.Client(dc, c.tls)
				if err := tc.HandshakeContext(ctx); err != nil {
					raw.Close()
					return nil, err
				}
				return tc, nil
			}
			return dc, nil
		}
		d := &dataConn{Conn: dc, raw: dc, record: c.record}
		if c.tls != nil {
			// The handshake happens on first use, as jlaffaye/ftp expects (some
			// servers only start theirs once the transfer command is sent).
			d.Conn = tls.Client(dc, c.tls)
		}
		return d, nil
	}
}

// tlsConfig is the TLS config of one control connection and its data
// connections, or nil for plain FTP (only with insecure_plaintext: true).
//
// Data connections must resume the control connection's session (vsftpd's
// require_ssl_reuse=YES refuses them otherwise: "522 SSL connection failed:
// session reuse required"). crypto/tls resumes only through session tickets, kept
// in ClientSessionCache under ServerName, which every connection of the control
// connection shares; a fresh cache per control connection ties them to it.
//
// TLS 1.3 works with vsftpd 3.0.3 (Debian, OpenSSL 3): its tickets can be used
// more than once, and Go reuses the one it holds, so every data connection
// resumes (measured: 12 of 12). But a TLS 1.3 server also sends a new ticket on
// each data connection, after the handshake; on an upload the client never reads
// it, and closing a socket with unread input makes the kernel reset the
// connection and drop the data not yet sent: vsftpd answered "426 Failure
// reading network stream" and kept 124,310 of 200,000 bytes, every time (curl
// met the same: curl/curl#6149). dataConn.Close therefore ends an upload
// gracefully: close_notify and FIN, then read to the server's end, then close.
// With that, TLS 1.3 uploads are whole, and TLS 1.2 is not needed; it would not
// be safer either, since crypto/tls has no session-ID resumption, only TLS 1.2
// tickets, which some servers do not issue.
func (s *Source) tlsConfig() (*tls.Config, error) {
	switch s.cfg.TLS {
	case config.TLSNone:
		// Validate refuses this too; a source built without it still must not.
		if !s.cfg.InsecurePlaintext {
			return nil, errors.New("ftp: tls: none sends the password and files in the clear; it needs insecure_plaintext: true")
		}
		return nil, nil
	case config.TLSExplicit, config.TLSImplicit, "":
	default:
		return nil, fmt.Errorf("ftp: tls: %q is not explicit, implicit or none", s.cfg.TLS)
	}
	cfg, err := netconn.TLSConfig(s.cfg.Address, s.cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ftp: %w", err)
	}
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	return cfg, nil
}

// explainTLS says plainly why the server's certificate was refused.
func (s *Source) explainTLS(err error) error {
	roots := "the system's trusted roots (set ca_file to trust a private CA)"
	if s.cfg.CAFile != "" {
		roots = "ca_file " + s.cfg.CAFile
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("the server's TLS certificate is refused: it is not signed by a CA in %s: %w", roots, err)
	case errors.As(err, &host):
		return fmt.Errorf("the server's TLS certificate is refused: it is not for %s: %w", host.Host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("the server's TLS certificate is refused: %w", err)
	}
	return err
}

// dataConn is a data connection: plain or TLS over a netconn.DeadlineConn. It keeps a
// copy of what it reads when asked (MLSD), and ends uploads gracefully.
type dataConn struct {
	net.Conn                       // *tls.Conn or raw
	raw      *netconn.DeadlineConn // the TCP connection under it
	record   *bytes.Buffer
	uploaded bool
}

func (d *dataConn) Read(b []byte) (int, error) {
	n, err := d.Conn.Read(b)
	if d.record != nil {
		d.record.Write(b[:n])
	}
	return n, err
}

func (d *dataConn) Write(b []byte) (int, error) {
	d.uploaded = true
	return d.Conn.Write(b)
}

// Handshake starts TLS on a data connection that carries nothing (an empty
// upload); jlaffaye/ftp calls it when present.
func (d *dataConn) Handshake() error {
	d.uploaded = true
	if tc, ok := d.Conn.(*tls.Conn); ok {
		return tc.Handshake()
	}
	return nil
}

// Close ends an upload gracefully: close_notify and FIN, then what the server
// still sends (a TLS 1.3 session ticket) is read until it closes, so closing
// does not reset the connection and lose the upload's tail (see tlsConfig).
func (d *dataConn) Close() error {
	if tc, ok := d.Conn.(*tls.Conn); ok && d.uploaded {
		if err := tc.CloseWrite(); err == nil {
			if tcp, ok := d.raw.Conn.(interface{ CloseWrite() error }); ok {
				tcp.CloseWrite()
			}
			io.Copy(io.Discard, tc) // until the server closes, or the deadline
		}
	}
	return d.Conn.Close()
}
