// Package ftptest starts FTP servers for tests: a small in-process one (fast,
// and strict about FTPS: it refuses data connections that do not resume the
// control connection's TLS session) and Debian's real vsftpd on a free loopback
// port with its own config and certificates in a temporary folder. Both serve the
// local file system under its real paths, so a test puts and inspects the
// source's files directly on disk.
//
// Each server has its own throwaway CA (Certificates); a client verifies the
// server with CAFile.
package ftptest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/returnsd/returnsd/config"
)

// Vsftpd is where Debian's vsftpd package puts the daemon.
const Vsftpd = "/usr/sbin/vsftpd"

// VsftpdUser is the local account a test logs in to vsftpd as. vsftpd checks its
// password through PAM (Debian's /etc/pam.d/vsftpd), then, as a guest login,
// runs the session as the user running the tests (root here), so the session
// can read and write the test's temporary folders.
const VsftpdUser = "returnsd-ftp"

// Server is a running FTP server.
type Server struct {
	Addr     string // host:port
	User     string
	Password string
	Mode     config.TLSMode // explicit, implicit or none
	Certs    *Certificates  // the server's CA and certificate (also for mode none)
	Dir      string         // a temporary folder holding the certificates (and vsftpd's config and log)

	stop func() error
}

// Stop stops the server and removes its folder.
func (s *Server) Stop() error {
	err := s.stop()
	os.RemoveAll(s.Dir)
	return err
}

func newServerDir(mode config.TLSMode) (*Server, error) {
	switch mode {
	case config.TLSExplicit, config.TLSImplicit, config.TLSNone:
	default:
		return nil, fmt.Errorf("ftptest: unknown TLS mode %q", mode)
	}
	dir, err := os.MkdirTemp("", "returnsd-ftp-")
	if err != nil {
		return nil, err
	}
	certs, err := NewCertificates(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Server{Mode: mode, Certs: certs, Dir: dir}, nil
}

// StartVsftpd starts Debian's vsftpd (Vsftpd) on a free loopback port with its own
// config, serving the local file system to VsftpdUser (created with a fresh
// password if it is missing) with TLS per mode: explicit (AUTH TLS) or implicit
// FTPS, with require_ssl_reuse=YES so a data connection must resume the control
// connection's TLS session, or plain FTP for mode none. It needs root and the
// vsftpd package; without them the error says so (tests must fail, not skip).
func StartVsftpd(mode config.TLSMode) (*Server, error) {
	if _, err := os.Stat(Vsftpd); err != nil {
		return nil, fmt.Errorf("vsftpd not installed (%s: %w); install vsftpd (scripts/test does)", Vsftpd, err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("vsftpd tests need root (to add the login user and run the daemon)")
	}
	password, err := vsftpdLogin()
	if err != nil {
		return nil, err
	}
	s, err := newServerDir(mode)
	if err != nil {
		return nil, err
	}
	s.User, s.Password = VsftpdUser, password
	fail := func(err error) (*Server, error) {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	me, err := user.Current()
	if err != nil {
		return fail(err)
	}
	empty := filepath.Join(s.Dir, "empty") // the pre-login process's chroot
	if err := os.Mkdir(empty, 0o755); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	// Passive ports: a random range of 1000, so servers of tests running side by
	// side rarely meet (vsftpd retries another port of the range if one is taken).
	n, _ := rand.Int(rand.Reader, big.NewInt(30))
	pasvMin := 30000 + 1000*int(n.Int64())
	lines := []string{
		"listen=YES",
		"listen_ipv6=NO",
		"listen_address=127.0.0.1",
		fmt.Sprintf("listen_port=%d", port),
		"background=NO",
		"anonymous_enable=NO",
		"local_enable=YES",
		"write_enable=YES",
		"local_umask=022",
		"guest_enable=YES",
		"guest_username=" + me.Username,
		"virtual_use_local_privs=YES",
		"pam_service_name=vsftpd",
		"userlist_enable=NO",
		"secure_chroot_dir=" + empty,
		"seccomp_sandbox=NO", // its syscall list lags newer libcs and kernels
		"isolate=NO",         // no new namespaces: containers often forbid them
		"isolate_network=NO",
		"pasv_enable=YES",
		"pasv_address=127.0.0.1",
		fmt.Sprintf("pasv_min_port=%d", pasvMin),
		fmt.Sprintf("pasv_max_port=%d", pasvMin+999),
		"port_enable=NO",
		"use_localtime=NO", // LIST and MDTM in UTC
		"dirmessage_enable=NO",
		"xferlog_enable=YES",
		"xferlog_std_format=NO",
		"log_ftp_protocol=YES",
		"vsftpd_log_file=" + filepath.Join(s.Dir, "vsftpd.log"),
		"idle_session_timeout=600",
		"data_connection_timeout=120",
	}
	if mode != config.TLSNone {
		lines = append(lines,
			"ssl_enable=YES",
			"rsa_cert_file="+s.Certs.CertFile,
			"rsa_private_key_file="+s.Certs.KeyFile,
			"ssl_ciphers=HIGH",
			"force_local_logins_ssl=YES",
			"force_local_data_ssl=YES",
			"require_ssl_reuse=YES",
			"debug_ssl=YES",
		)
		if mode == config.TLSImplicit {
			lines = append(lines, "implicit_ssl=YES")
		}
	}
	cfgFile := filepath.Join(s.Dir, "vsftpd.conf")
	if err := os.WriteFile(cfgFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fail(err)
	}
	cmd := exec.Command(Vsftpd, cfgFile)
	// Its own process group: Stop ends the sessions it forked with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(filepath.Join(s.Dir, "vsftpd.out"))
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fail(fmt.Errorf("start vsftpd: %w", err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); out.Close() }()
	s.stop = func() error {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(s.Dir, "vsftpd.out"))
			os.RemoveAll(s.Dir)
			return nil, fmt.Errorf("vsftpd exited: %v: %s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("vsftpd did not listen on %s within 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Log returns vsftpd's log (the FTP protocol and TLS events), for a failing
// test to show. Empty for the in-process server.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "vsftpd.log"))
	return string(b)
}

var login struct {
	once     sync.Once
	password string
	err      error
}

// vsftpdLogin makes sure VsftpdUser exists and gives it a fresh random password,
// once per test process; the password is never written down.
func vsftpdLogin() (string, error) {
	login.once.Do(func() {
		if _, err := user.Lookup(VsftpdUser); err != nil {
			// A system account with no home of its own; its shell must be in
			// /etc/shells for Debian's PAM config (pam_shells) to let it log in.
			out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/",
				"--shell", "/bin/sh", VsftpdUser).CombinedOutput()
			if err != nil {
				login.err = fmt.Errorf("useradd %s: %v: %s", VsftpdUser, err, out)
				return
			}
		}
		b := make([]byte, 16)
		rand.Read(b)
		pw := hex.EncodeToString(b)
		cmd := exec.Command("chpasswd")
		cmd.Stdin = strings.NewReader(VsftpdUser + ":" + pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			login.err = fmt.Errorf("chpasswd %s: %v: %s", VsftpdUser, err, out)
			return
		}
		login.password = pw
	})
	return login.password, login.err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
