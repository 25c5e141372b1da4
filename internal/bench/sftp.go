package main

// ---- SFTP fetch phase -------------------------------------------------------
//
// benchSFTP times fetching one 100 MB file of random bytes over SFTP from the
// local OpenSSH server (sshtest.StartOpenSSH: Debian's sshd with internal-sftp),
// two ways in the same run: ingest/sftp's Source (New, Fetch into a file on disk,
// Close: the connection and handshake are timed too) and OpenSSH's own `sftp`
// client fetching the same file into a file (its process, connection and
// handshake timed too). Each is run three times, alternately, and the best run of
// each is compared; each fetched copy is checked against the original. Target:
// the Source no slower than the sftp client.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
	"github.com/returnsd/returnsd/ingest/sftp"
	"github.com/returnsd/returnsd/ingest/sftp/sshtest"
)

const sftpBenchBytes = 100 << 20

func benchSFTP(ctx context.Context) error {
	srv, err := sshtest.StartOpenSSH()
	if err != nil {
		return fmt.Errorf("sftp phase: %w", err)
	}
	defer srv.Stop()
	dir, err := os.MkdirTemp("", "returnsd-bench-sftp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	remoteDir := filepath.Join(dir, "remote")
	if err := os.Mkdir(remoteDir, 0o755); err != nil {
		return err
	}
	remote := filepath.Join(remoteDir, "big.bin")
	body := make([]byte, sftpBenchBytes)
	rand.Read(body)
	want := sha256.Sum256(body)
	if err := os.WriteFile(remote, body, 0o644); err != nil {
		return err
	}
	body = nil

	cfg := &config.Source{Name: "bench-sftp", Brand: "acme", Type: config.SFTP, Address: srv.Addr,
		Username: srv.User, KnownHosts: srv.KnownHosts, PrivateKeyFile: srv.KeyFile,
		Path: remoteDir, ResultPath: remoteDir, After: config.AfterLeave, Timeout: config.Duration{Time: time.Minute}}
	host, port, _ := strings.Cut(srv.Addr, ":")
	local := filepath.Join(dir, "local.bin")

	viaSource := func() (time.Duration, error) {
		start := time.Now()
		s := sftp.New(cfg)
		out, err := os.Create(local)
		if err != nil {
			return 0, err
		}
		err = s.Fetch(ctx, ingest.File{Name: "big.bin", Path: remote, Size: sftpBenchBytes}, out)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		s.Close()
		return time.Since(start), err
	}
	viaClient := func() (time.Duration, error) {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "sftp", "-q", "-i", srv.KeyFile, "-P", port,
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
			"-o", "UserKnownHostsFile="+srv.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
			srv.User+"@"+host+":"+remote, local)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("sftp client: %v: %s", err, stderr.String())
		}
		return time.Since(start), nil
	}

	best := map[string]time.Duration{}
	for range 3 {
		for _, m := range []struct {
			name  string
			fetch func() (time.Duration, error)
		}{{"source", viaSource}, {"client", viaClient}} {
			os.Remove(local)
			took, err := m.fetch()
			if err != nil {
				return fmt.Errorf("sftp phase (%s): %w", m.name, err)
			}
			if err := sameFile(local, want); err != nil {
				return fmt.Errorf("sftp phase (%s): %w", m.name, err)
			}
			if b, ok := best[m.name]; !ok || took < b {
				best[m.name] = took
			}
		}
	}
	mbps := func(d time.Duration) float64 { return float64(sftpBenchBytes) / (1 << 20) / d.Seconds() }
	src, cli := best["source"], best["client"]
	fmt.Printf("sftp fetch, 100 MB from local OpenSSH, best of 3: ingest/sftp %s (%.0f MB/s), OpenSSH sftp client %s (%.0f MB/s)\n",
		src.Round(time.Millisecond), mbps(src), cli.Round(time.Millisecond), mbps(cli))
	ratio := src.Seconds() / cli.Seconds()
	fmt.Printf("sftp fetch ingest/sftp / sftp client: %.2fx (target <= 1)\n", ratio)
	if ratio > 1 {
		fmt.Println("bench: a target was missed")
	}
	return nil
}

// sameFile checks that the file at p holds the bytes whose hash is want.
func sameFile(p string, want [32]byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != sftpBenchBytes || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("the fetched copy differs from the original (%d bytes)", n)
	}
	return nil
}
