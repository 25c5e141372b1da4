package ftptest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/returnsd/returnsd/config"
)

// StartInProcess starts a small FTP server in this process on a free loopback
// port, with TLS per mode: explicit (AUTH TLS required before login), implicit,
// or none. It speaks what a client of ingest.Source needs: USER/PASS, FEAT,
// AUTH TLS, PBSZ, PROT, TYPE, EPSV/PASV, MLSD (symbolic links typed
// OS.unix=symlink, as ProFTPD does), MLST, SIZE, MDTM, RETR, STOR, RNFR/RNTO,
// DELE, MKD, NOOP, QUIT; no LIST (vsftpd is the LIST server of the tests). With TLS, PROT P is required and a data connection that
// does not resume the control connection's TLS session is refused, as vsftpd's
// require_ssl_reuse does.
//
// (fclairamb/ftpserverlib would have served too, but its MLSD types symbolic
// links as files, and it cannot require session reuse.)
func StartInProcess(mode config.TLSMode) (*Server, error) {
	s, err := newServerDir(mode)
	if err != nil {
		return nil, err
	}
	s.User, s.Password = "returnsd", "in-process-secret"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	s.Addr = ln.Addr().String()
	srv := &inProcess{s: s, ln: ln, conns: map[net.Conn]bool{},
		tls: &tls.Config{Certificates: []tls.Certificate{s.Certs.Server}, MinVersion: tls.VersionTLS12}}
	srv.wg.Add(1)
	go srv.accept()
	s.stop = srv.stop
	return s, nil
}

type inProcess struct {
	s   *Server
	ln  net.Listener
	tls *tls.Config

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func (srv *inProcess) accept() {
	defer srv.wg.Done()
	for {
		nc, err := srv.ln.Accept()
		if err != nil {
			return
		}
		srv.mu.Lock()
		srv.conns[nc] = true
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			defer func() {
				srv.mu.Lock()
				delete(srv.conns, nc)
				srv.mu.Unlock()
			}()
			(&session{srv: srv, raw: nc}).serve()
		}()
	}
}

func (srv *inProcess) stop() error {
	err := srv.ln.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		c.Close()
	}
	srv.mu.Unlock()
	srv.wg.Wait()
	return err
}

// session is one control connection.
type session struct {
	srv      *inProcess
	raw      net.Conn
	conn     net.Conn // raw, or TLS over it
	r        *bufio.Reader
	w        *bufio.Writer
	secure   bool
	protP    bool
	user     string
	loggedIn bool
	pasv     net.Listener
	from     string // RNFR
}

const dataTimeout = 10 * time.Second

func (c *session) serve() {
	defer c.raw.Close()
	defer c.closePasv()
	c.setConn(c.raw)
	if c.srv.s.Mode == config.TLSImplicit {
		tc := tls.Server(c.raw, c.srv.tls)
		if tc.Handshake() != nil {
			return
		}
		c.setConn(tc)
		c.secure = true
	}
	c.reply(220, "returnsd ftptest ready")
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		if !c.handle(strings.ToUpper(cmd), arg) {
			return
		}
	}
}

func (c *session) setConn(nc net.Conn) {
	c.conn = nc
	c.r = bufio.NewReader(nc)
	c.w = bufio.NewWriter(nc)
}

func (c *session) reply(code int, msg string) {
	fmt.Fprintf(c.w, "%d %s\r\n", code, msg)
	c.w.Flush()
}

// handle runs one command; false ends the session.
func (c *session) handle(cmd, arg string) bool {
	tlsMode := c.srv.s.Mode != config.TLSNone
	switch cmd {
	case "QUIT":
		c.reply(221, "bye")
		return false
	case "AUTH":
		if !tlsMode || c.secure || !strings.EqualFold(arg, "TLS") {
			c.reply(504, "AUTH TLS only, once, and only on a TLS server")
			return true
		}
		c.reply(234, "proceed with TLS")
		tc := tls.Server(c.raw, c.srv.tls)
		if tc.Handshake() != nil {
			return false
		}
		c.setConn(tc)
		c.secure = true
		return true
	case "FEAT":
		c.w.WriteString("211-Features:\r\n MLST type*;size*;modify*;\r\n MDTM\r\n SIZE\r\n EPSV\r\n PASV\r\n UTF8\r\n")
		if tlsMode {
			c.w.WriteString(" AUTH TLS\r\n PBSZ\r\n PROT\r\n")
		}
		c.reply(211, "End")
		return true
	case "USER":
		if tlsMode && !c.secure {
			c.reply(530, "TLS required first (AUTH TLS)")
			return true
		}
		c.user, c.loggedIn = arg, false
		c.reply(331, "password please")
		return true
	case "PASS":
		if c.user == c.srv.s.User && arg == c.srv.s.Password {
			c.loggedIn = true
			c.reply(230, "logged in")
		} else {
			c.reply(530, "login incorrect")
		}
		return true
	}
	if !c.loggedIn {
		c.reply(530, "log in first")
		return true
	}
	switch cmd {
	case "PBSZ":
		c.reply(200, "PBSZ=0")
	case "PROT":
		switch {
		case strings.EqualFold(arg, "P") && c.secure:
			c.protP = true
			c.reply(200, "protection private")
		case strings.EqualFold(arg, "C") && !tlsMode:
			c.reply(200, "protection clear")
		default:
			c.reply(536, "PROT P on a TLS connection only")
		}
	case "TYPE", "OPTS", "NOOP":
		c.reply(200, "ok")
	case "SYST":
		c.reply(215, "UNIX Type: L8")
	case "PWD":
		c.reply(257, `"/" is the current directory`)
	case "CWD":
		if info, err := os.Stat(abs(arg)); err != nil || !info.IsDir() {
			c.reply(550, "no such folder")
		} else {
			c.reply(250, "ok") // paths stay absolute: the working folder is always /
		}
	case "EPSV", "PASV":
		c.closePasv()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.reply(425, err.Error())
			break
		}
		c.pasv = ln
		port := ln.Addr().(*net.TCPAddr).Port
		if cmd == "EPSV" {
			c.reply(229, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", port))
		} else {
			c.reply(227, fmt.Sprintf("Entering Passive Mode (127,0,0,1,%d,%d)", port/256, port%256))
		}
	case "MLSD":
		c.mlsd(arg)
	case "MLST":
		info, err := os.Lstat(abs(arg))
		if err != nil {
			c.reply(550, "no such file")
			break
		}
		c.w.WriteString("250-Listing " + arg + "\r\n " + mlsx(info) + "\r\n")
		c.reply(250, "End")
	case "SIZE", "MDTM":
		info, err := os.Stat(abs(arg))
		switch {
		case err != nil || !info.Mode().IsRegular():
			c.reply(550, "no such file")
		case cmd == "SIZE":
			c.reply(213, strconv.FormatInt(info.Size(), 10))
		default:
			c.reply(213, info.ModTime().UTC().Format("20060102150405"))
		}
	case "RETR":
		c.retr(abs(arg))
	case "STOR":
		c.stor(abs(arg))
	case "RNFR":
		if _, err := os.Lstat(abs(arg)); err != nil {
			c.reply(550, "no such file")
			break
		}
		c.from = abs(arg)
		c.reply(350, "ready for RNTO")
	case "RNTO":
		from := c.from
		c.from = ""
		if from == "" {
			c.reply(503, "RNFR first")
		} else if err := os.Rename(from, abs(arg)); err != nil {
			c.reply(550, "rename failed")
		} else {
			c.reply(250, "renamed")
		}
	case "DELE":
		if info, err := os.Lstat(abs(arg)); err != nil || info.IsDir() {
			c.reply(550, "no such file")
		} else if err := os.Remove(abs(arg)); err != nil {
			c.reply(550, "delete failed")
		} else {
			c.reply(250, "deleted")
		}
	case "MKD":
		if err := os.Mkdir(abs(arg), 0o755); err != nil {
			c.reply(550, "cannot make folder")
		} else {
			c.reply(257, strconv.Quote(abs(arg))+" created")
		}
	default:
		c.reply(502, "not implemented")
	}
	return true
}

// abs resolves a path against the working folder, always /.
func abs(p string) string { return path.Join("/", p) }

// openData accepts the data connection of a transfer command, after the 150
// reply. With PROT P it must resume the control connection's TLS session.
func (c *session) openData() (net.Conn, error) {
	ln := c.pasv
	c.pasv = nil
	if ln == nil {
		return nil, errors.New("425 use EPSV or PASV first")
	}
	defer ln.Close()
	if c.srv.s.Mode != config.TLSNone && !c.protP {
		return nil, errors.New("521 PROT P required")
	}
	c.reply(150, "opening data connection")
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(dataTimeout))
	dc, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("425 no data connection: %v", err)
	}
	if !c.protP {
		return dc, nil
	}
	tc := tls.Server(dc, c.srv.tls)
	tc.SetDeadline(time.Now().Add(dataTimeout))
	if err := tc.Handshake(); err != nil {
		dc.Close()
		return nil, fmt.Errorf("522 TLS handshake on the data connection failed: %v", err)
	}
	tc.SetDeadline(time.Time{})
	if !tc.ConnectionState().DidResume {
		tc.Close()
		return nil, errors.New("522 data connection must resume the control connection's TLS session")
	}
	return tc, nil
}

// finish replies to a transfer: 226, or the error's code and text.
func (c *session) finish(err error) {
	if err == nil {
		c.reply(226, "transfer complete")
		return
	}
	code, msg, ok := strings.Cut(err.Error(), " ")
	if n, cerr := strconv.Atoi(code); ok && cerr == nil && n >= 400 {
		c.reply(n, msg)
		return
	}
	c.reply(426, "transfer aborted: "+err.Error())
}

func (c *session) mlsd(arg string) {
	dir := abs(arg)
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.reply(550, "no such folder")
		return
	}
	dc, err := c.openData()
	if err != nil {
		c.finish(err)
		return
	}
	w := bufio.NewWriter(dc)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "%s\r\n", mlsx(info))
	}
	err = w.Flush()
	if cerr := dc.Close(); err == nil {
		err = cerr
	}
	c.finish(err)
}

// mlsx is an MLSD/MLST entry: facts, a space, the name.
func mlsx(info fs.FileInfo) string {
	typ := "file"
	switch {
	case info.IsDir():
		typ = "dir"
	case info.Mode()&fs.ModeSymlink != 0:
		typ = "OS.unix=symlink"
	case !info.Mode().IsRegular():
		typ = "OS.unix=special"
	}
	return fmt.Sprintf("type=%s;size=%d;modify=%s; %s", typ, info.Size(),
		info.ModTime().UTC().Format("20060102150405.000"), info.Name())
}

func (c *session) retr(p string) {
	f, err := os.Open(p)
	if err != nil {
		c.reply(550, "no such file")
		return
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		c.reply(550, "not a file")
		return
	}
	dc, err := c.openData()
	if err != nil {
		c.finish(err)
		return
	}
	_, err = io.Copy(dc, f)
	if cerr := dc.Close(); err == nil {
		err = cerr
	}
	c.finish(err)
}

func (c *session) stor(p string) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		c.reply(553, "cannot create file")
		return
	}
	dc, err := c.openData()
	if err != nil {
		f.Close()
		c.finish(err)
		return
	}
	_, err = io.Copy(f, dc)
	dc.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	c.finish(err)
}

func (c *session) closePasv() {
	if c.pasv != nil {
		c.pasv.Close()
		c.pasv = nil
	}
}
