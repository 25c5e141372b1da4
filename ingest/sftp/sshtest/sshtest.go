// Package sshtest starts SFTP servers for tests and the benchmark: an in-process
// one (pkg/sftp's server behind an x/crypto/ssh server, fast) and Debian's real
// OpenSSH sshd on a free loopback port with its own config, host key and
// authorized_keys in a temporary folder. Both serve the local file system, so a
// test puts and inspects the source's files directly on disk.
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is where Debian's openssh-server puts the daemon.
const SSHD = "/usr/sbin/sshd"

// Server is a running SFTP server.
type Server struct {
	Addr       string // host:port
	User       string
	Password   string // in-process server only; random, since the server serves the whole file system
	KeyFile    string // the client's private key (OpenSSH PEM)
	KnownHosts string // a known_hosts file pinning the server's host key
	Dir        string // a temporary folder holding the above
	HostKey    ssh.Signer

	stop func() error
}

// Stop stops the server and removes its folder.
func (s *Server) Stop() error {
	err := s.stop()
	os.RemoveAll(s.Dir)
	return err
}

// WriteKnownHosts writes a known_hosts file in the server's folder pinning key for
// addr and returns its path: to pin a different key than the server's (tests of a
// changed key), or the server's key at a proxy's address.
func (s *Server) WriteKnownHosts(name, addr string, key ssh.PublicKey) (string, error) {
	p := filepath.Join(s.Dir, name)
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	return p, os.WriteFile(p, []byte(line+"\n"), 0o600)
}

// NewSigner returns a fresh ed25519 key and its OpenSSH PEM encoding.
func NewSigner() (ssh.Signer, []byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, err
	}
	return signer, pem.EncodeToMemory(block), nil
}

// newServerDir makes the folder with a host key, a client key and the client's user.
func newServerDir() (*Server, []byte, []byte, ssh.PublicKey, error) {
	dir, err := os.MkdirTemp("", "returnsd-ssh-")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	s := &Server{Dir: dir}
	fail := func(err error) (*Server, []byte, []byte, ssh.PublicKey, error) {
		os.RemoveAll(dir)
		return nil, nil, nil, nil, err
	}
	host, hostPEM, err := NewSigner()
	if err != nil {
		return fail(err)
	}
	client, clientPEM, err := NewSigner()
	if err != nil {
		return fail(err)
	}
	s.HostKey = host
	s.KeyFile = filepath.Join(dir, "client_key")
	if err := os.WriteFile(s.KeyFile, clientPEM, 0o600); err != nil {
		return fail(err)
	}
	u, err := user.Current()
	if err != nil {
		return fail(err)
	}
	s.User = u.Username
	return s, hostPEM, clientPEM, client.PublicKey(), nil
}

// StartInProcess starts pkg/sftp's server behind an SSH server in this process,
// on a free loopback port. It accepts the client key (KeyFile) and Password.
func StartInProcess() (*Server, error) {
	s, _, _, clientKey, err := newServerDir()
	if err != nil {
		return nil, err
	}
	// The server serves this machine's whole file system as the user running
	// it (root, in the demo): a password any local user could read here would
	// hand them that user's files.
	var pw [16]byte
	rand.Read(pw[:])
	s.Password = hex.EncodeToString(pw[:])
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pass []byte) (*ssh.Permissions, error) {
			if c.User() == s.User && string(pass) == s.Password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == s.User && string(key.Marshal()) == string(clientKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.HostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	s.Addr = ln.Addr().String()
	if s.KnownHosts, err = s.WriteKnownHosts("known_hosts", s.Addr, s.HostKey.PublicKey()); err != nil {
		ln.Close()
		os.RemoveAll(s.Dir)
		return nil, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[nc] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveConn(nc, cfg)
				mu.Lock()
				delete(conns, nc)
				mu.Unlock()
			}()
		}
	}()
	s.stop = func() error {
		err := ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		return err
	}
	return s, nil
}

func serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range reqs { // keepalive@openssh.com and the like
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "session channels only")
			continue
		}
		ch, in, err := nch.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ch.Close()
			subsystem := false
			for r := range in {
				ok := r.Type == "subsystem" && len(r.Payload) >= 4 && string(r.Payload[4:]) == "sftp"
				r.Reply(ok, nil)
				if ok && !subsystem {
					subsystem = true
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer ch.Close()
						srv, err := sftp.NewServer(ch)
						if err != nil {
							return
						}
						if err := srv.Serve(); err == io.EOF {
							srv.Close()
						}
					}()
				}
			}
		}()
	}
}

// StartOpenSSH starts Debian's sshd (SSHD) on a free loopback port with its own
// sshd_config, host key and authorized_keys in a temporary folder, serving SFTP
// (internal-sftp) to the current user, who logs in with KeyFile. It needs the
// openssh-server package; without it the error says so (tests must fail, not skip).
func StartOpenSSH() (*Server, error) {
	if _, err := os.Stat(SSHD); err != nil {
		return nil, fmt.Errorf("OpenSSH server not installed (%s: %w); install openssh-server (scripts/test does)", SSHD, err)
	}
	s, hostPEM, _, clientKey, err := newServerDir()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory; Debian creates it only at boot.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return fail(err)
		}
	}
	hostKeyFile := filepath.Join(s.Dir, "host_key")
	if err := os.WriteFile(hostKeyFile, hostPEM, 0o600); err != nil {
		return fail(err)
	}
	authorized := filepath.Join(s.Dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientKey), 0o600); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	cfgFile := filepath.Join(s.Dir, "sshd_config")
	cfg := strings.Join([]string{
		fmt.Sprintf("Port %d", port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKeyFile,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"AllowUsers " + s.User,
		"Subsystem sftp internal-sftp",
		"LogLevel ERROR",
	}, "\n") + "\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return fail(err)
	}
	if s.KnownHosts, err = s.WriteKnownHosts("known_hosts", s.Addr, s.HostKey.PublicKey()); err != nil {
		return fail(err)
	}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfgFile)
	logFile, err := os.Create(filepath.Join(s.Dir, "sshd.log"))
	if err != nil {
		return fail(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fail(fmt.Errorf("start sshd: %w", err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	s.stop = func() error {
		cmd.Process.Kill()
		<-exited
		return nil
	}
	// Ready when it accepts connections.
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
			log, _ := os.ReadFile(filepath.Join(s.Dir, "sshd.log"))
			os.RemoveAll(s.Dir)
			return nil, fmt.Errorf("sshd exited: %v: %s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("sshd did not listen on %s within 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
