// Package sftp is the SFTP source: files in a folder on a brand's SFTP server,
// reached over SSH with the server's host key pinned in a known_hosts file.
//
// The connection is made on first use and kept; a lost connection is dropped
// and made again on the next call. Every read and write on the connection has a
// deadline (the source's timeout), SSH keepalives keep a healthy idle connection
// busy enough not to trip it, and a cancelled context closes the connection, so
// no call outlives its context or hangs on a silent server.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/internal/netconn"
)

var _ ingest.Source = (*Source)(nil)

// DefaultTimeout bounds each network operation when the config gives none.
const DefaultTimeout = time.Minute

// Source is a folder on an SFTP server. Its zero value is not usable; call New.
type Source struct {
	cfg     config.Source
	timeout time.Duration
	now     func() time.Time

	mu     sync.Mutex
	conn   *conn // nil until connected, and after a reset
	closed bool
}

// conn is one SSH connection with its SFTP session.
type conn struct {
	net  net.Conn
	ssh  *ssh.Client
	sftp *sftp.Client
	dead atomic.Bool
	stop chan struct{}
	done sync.WaitGroup
}

// New returns the source for cfg (an sftp source after WithDefaults). It does not
// connect: the first call that needs the server does.
func New(cfg *config.Source) *Source {
	timeout, ok := cfg.Timeout.Fixed()
	if !ok || timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Source{cfg: *cfg, timeout: timeout, now: time.Now}
}

// List returns the regular files in the source's folder. The server reports
// symbolic links as such (OpenSSH lists with lstat); they are left out.
func (s *Source) List(ctx context.Context) ([]ingest.File, error) {
	var out []ingest.File
	err := s.do(ctx, "list "+s.cfg.Path, func(c *sftp.Client) error {
		infos, err := c.ReadDir(s.cfg.Path)
		if err != nil {
			return err
		}
		for _, info := range infos {
			if !info.Mode().IsRegular() {
				continue
			}
			out = append(out, ingest.File{Name: info.Name(), Path: path.Join(s.cfg.Path, info.Name()),
				Size: info.Size(), ModTime: info.ModTime()})
		}
		return nil
	})
	return out, err
}

// Fetch streams the file to w with concurrent reads (pkg/sftp's File.WriteTo).
func (s *Source) Fetch(ctx context.Context, f ingest.File, w io.Writer) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("sftp: %q is not a plain file name", f.Name)
	}
	return s.do(ctx, "fetch "+f.Name, func(c *sftp.Client) error {
		in, err := c.Open(path.Join(s.cfg.Path, f.Name))
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = in.WriteTo(w)
		return err
	})
}

// Put uploads the result file under a temporary name in the result folder and
// renames it into place (POSIX rename where the server has it, so a result of
// the same name is replaced in one step).
func (s *Source) Put(ctx context.Context, f ingest.File, name string, r io.Reader) error {
	if !ingest.SafeName(name) {
		return fmt.Errorf("sftp: %q is not a plain file name", name)
	}
	dir := s.cfg.ResultPath
	return s.do(ctx, "put "+name, func(c *sftp.Client) error {
		if err := c.MkdirAll(dir); err != nil {
			return err
		}
		tmp, final := path.Join(dir, "."+name+".tmp"), path.Join(dir, name)
		out, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, r)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = rename(c, tmp, final, true)
		}
		if err != nil {
			c.Remove(tmp)
		}
		return err
	})
}

// Ack moves the file to processed/ or failed/ under the source's folder, deletes
// it, or leaves it, per the source's after setting. A file already gone is
// taken as acknowledged before.
func (s *Source) Ack(ctx context.Context, f ingest.File, d ingest.Disposition) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("sftp: %q is not a plain file name", f.Name)
	}
	if s.cfg.After == config.AfterLeave {
		return nil
	}
	from := path.Join(s.cfg.Path, f.Name)
	return s.do(ctx, "ack "+f.Name, func(c *sftp.Client) error {
		if s.cfg.After == config.AfterDelete {
			if err := c.Remove(from); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		if _, err := c.Lstat(from); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		folder := path.Join(s.cfg.Path, d.String())
		if err := c.Mkdir(folder); err != nil {
			if info, serr := c.Stat(folder); serr != nil || !info.IsDir() {
				return err
			}
		}
		to := path.Join(folder, f.Name)
		if _, err := c.Lstat(to); err == nil {
			to = path.Join(folder, ingest.ArchiveName(f.Name, s.now()))
		}
		if err := rename(c, from, to, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// Close closes the connection. The source may not be used after.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.resetLocked()
	return nil
}

// rename renames from to to; with replace, an existing to is replaced.
func rename(c *sftp.Client, from, to string, replace bool) error {
	if !replace {
		return c.Rename(from, to) // SSH_FXP_RENAME never overwrites
	}
	if _, ok := c.HasExtension("posix-rename@openssh.com"); ok {
		return c.PosixRename(from, to)
	}
	if err := c.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return c.Rename(from, to)
}

// do runs one operation on the connection (connecting first if needed). A
// cancelled ctx closes the connection, which ends the operation; an operation
// that lost the connection resets it, so the next call connects again.
func (s *Source) do(ctx context.Context, op string, fn func(*sftp.Client) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("sftp: %s: source is closed", op)
	}
	c, err := s.connectLocked(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.net.Close() })
	err = fn(c.sftp)
	if !stop() || c.dead.Load() || lostConnection(err) {
		s.resetLocked()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return fmt.Errorf("sftp: %s: %w", op, err)
	}
	return nil
}

func lostConnection(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &netErr)
}

func (s *Source) resetLocked() {
	if s.conn == nil {
		return
	}
	c := s.conn
	s.conn = nil
	close(c.stop)
	c.sftp.Close()
	c.ssh.Close()
	c.done.Wait()
}

// connectLocked returns the live connection, making one if there is none.
func (s *Source) connectLocked(ctx context.Context) (*conn, error) {
	if s.conn != nil && !s.conn.dead.Load() {
		return s.conn, nil
	}
	s.resetLocked()
	sshCfg, err := s.clientConfig()
	if err != nil {
		return nil, err
	}
	addr := s.cfg.Address
	dialer := net.Dialer{Timeout: s.timeout, KeepAlive: 30 * time.Second}
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sftp: connect %s: %w", addr, err)
	}
	// A server silent for longer than the timeout (keepalives included) fails the connection.
	nc := &netconn.DeadlineConn{Conn: raw, Timeout: s.timeout}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, sshCfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, fmt.Errorf("sftp: connect %s: %w", addr, ctx.Err())
	}
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("sftp: connect %s: %w", addr, explainHandshake(err))
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client,
		sftp.UseConcurrentReads(true), sftp.UseConcurrentWrites(true), sftp.UseFstat(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("sftp: start sftp subsystem on %s: %w", addr, err)
	}
	c := &conn{net: raw, ssh: client, sftp: sc2, stop: make(chan struct{})}
	c.done.Add(2)
	go func() {
		defer c.done.Done()
		client.Wait()
		c.dead.Store(true)
	}()
	go func() {
		defer c.done.Done()
		keepalive(c, s.timeout/3)
	}()
	s.conn = c
	return c, nil
}

// keepalive asks the server for a reply every interval, so that a healthy idle
// connection has traffic well within the read deadline, and a dead one trips it.
func keepalive(c *conn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if _, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil); err != nil {
				c.dead.Store(true)
				return
			}
		}
	}
}

// clientConfig builds the SSH client config: credentials from the password (env or
// file) and/or private key, and the host key checked against known_hosts.
func (s *Source) clientConfig() (*ssh.ClientConfig, error) {
	var auth []ssh.AuthMethod
	if s.cfg.PrivateKeyFile != "" {
		pem, err := os.ReadFile(s.cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("sftp: private_key_file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, fmt.Errorf("sftp: private_key_file %s: %w (passphrase-protected keys are not supported)", s.cfg.PrivateKeyFile, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	password, err := s.cfg.Password()
	if err != nil {
		return nil, fmt.Errorf("sftp: %w", err)
	}
	if password != "" {
		auth = append(auth, ssh.Password(password), ssh.KeyboardInteractive(
			func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
	}
	if len(auth) == 0 {
		return nil, errors.New("sftp: no credentials: set password, password_file or private_key_file")
	}
	if s.cfg.KnownHosts == "" {
		return nil, errors.New("sftp: known_hosts is required: the server's host key must be pinned")
	}
	hostKeys, err := knownhosts.New(s.cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("sftp: known_hosts: %w", err)
	}
	return &ssh.ClientConfig{
		User:              s.cfg.Username,
		Auth:              auth,
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: knownAlgorithms(hostKeys, s.cfg.Address),
		Timeout:           s.timeout,
	}, nil
}

// knownAlgorithms lists the host key algorithms of the keys known_hosts pins for
// addr, so the server is asked for a key we can check rather than one of another
// type (which would read as a changed key). Nil (the defaults) if none is known:
// the handshake then fails as an unknown host.
func knownAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// probeKey is a key no known_hosts holds: checking it returns the keys that are known.
type probeKey struct{}

func (probeKey) Type() string                            { return "returnsd-probe" }
func (probeKey) Marshal() []byte                         { return []byte("returnsd-probe") }
func (probeKey) Verify(_ []byte, _ *ssh.Signature) error { return errors.New("probe key") }

// explainHandshake says plainly why a host key was refused.
func explainHandshake(err error) error {
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		if len(ke.Want) == 0 {
			return fmt.Errorf("host key refused: the server is not in known_hosts (add its key to pin it): %w", err)
		}
		return fmt.Errorf("host key refused: the server's key has CHANGED from the one pinned in known_hosts (%s:%d): %w",
			ke.Want[0].Filename, ke.Want[0].Line, err)
	}
	var re *knownhosts.RevokedError
	if errors.As(err, &re) {
		return fmt.Errorf("host key refused: the key is revoked in known_hosts: %w", err)
	}
	return err
}
