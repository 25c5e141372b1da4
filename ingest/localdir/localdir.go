// Package localdir is the local folder source: files dropped in a directory on
// this machine (by the platform's own FTP/SFTP server, or by hand). Every access
// goes through an os.Root, so no name and no symbolic link reaches outside the
// source's folder.
package localdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/returnsd/returnsd/config"
	"github.com/returnsd/returnsd/ingest"
)

var _ ingest.Source = (*Source)(nil)

// Source is a local folder. Its zero value is not usable; call New.
type Source struct {
	dir, resultDir string
	after          config.After
	now            func() time.Time
}

// New returns the source for cfg (a localdir source after WithDefaults). The
// folder is opened on each call, so one created later is found.
func New(cfg *config.Source) *Source {
	return &Source{dir: cfg.Path, resultDir: cfg.ResultPath, after: cfg.After, now: time.Now}
}

// List returns the regular files in the folder; symbolic links, directories and
// special files are left out.
func (s *Source) List(ctx context.Context) ([]ingest.File, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("localdir: list %s: %w", s.dir, err)
	}
	var out []ingest.File
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("localdir: list %s: %w", s.dir, err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		out = append(out, ingest.File{Name: e.Name(), Path: filepath.Join(s.dir, e.Name()),
			Size: info.Size(), ModTime: info.ModTime()})
	}
	return out, nil
}

// Fetch copies the file to w.
func (s *Source) Fetch(ctx context.Context, f ingest.File, w io.Writer) error {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fmt.Errorf("localdir: %w", err)
	}
	defer root.Close()
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("localdir: %q is not a plain file name", f.Name)
	}
	in, err := root.Open(f.Name)
	if err != nil {
		return fmt.Errorf("localdir: fetch: %w", err)
	}
	defer in.Close()
	if info, err := in.Stat(); err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("localdir: fetch %s: not a regular file", f.Name)
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: in}); err != nil {
		return fmt.Errorf("localdir: fetch %s: %w", f.Name, err)
	}
	return nil
}

// Put writes the result file beside its final name and renames it into place.
func (s *Source) Put(ctx context.Context, f ingest.File, name string, r io.Reader) error {
	if !ingest.SafeName(name) {
		return fmt.Errorf("localdir: %q is not a plain file name", name)
	}
	if err := os.MkdirAll(s.resultDir, 0o755); err != nil {
		return fmt.Errorf("localdir: put: %w", err)
	}
	root, err := os.OpenRoot(s.resultDir)
	if err != nil {
		return fmt.Errorf("localdir: put: %w", err)
	}
	defer root.Close()
	tmp := "." + name + ".tmp"
	out, err := root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("localdir: put %s: %w", name, err)
	}
	_, err = io.Copy(out, &ctxReader{ctx: ctx, r: r})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("localdir: put %s: %w", name, err)
	}
	return nil
}

// Ack moves, deletes or leaves the file per the source's after setting.
func (s *Source) Ack(ctx context.Context, f ingest.File, d ingest.Disposition) error {
	if !ingest.SafeName(f.Name) {
		return fmt.Errorf("localdir: %q is not a plain file name", f.Name)
	}
	if s.after == config.AfterLeave {
		return nil
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fmt.Errorf("localdir: ack: %w", err)
	}
	defer root.Close()
	if _, err := root.Lstat(f.Name); errors.Is(err, fs.ErrNotExist) {
		return nil // acknowledged before
	}
	if s.after == config.AfterDelete {
		if err := root.Remove(f.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("localdir: ack %s: %w", f.Name, err)
		}
		return nil
	}
	folder := d.String()
	if err := root.Mkdir(folder, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("localdir: ack %s: %w", f.Name, err)
	}
	target := path.Join(folder, f.Name)
	if _, err := root.Lstat(target); err == nil {
		target = path.Join(folder, ingest.ArchiveName(f.Name, s.now()))
	}
	if err := root.Rename(f.Name, target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("localdir: ack %s: %w", f.Name, err)
	}
	return nil
}

// Close does nothing: a folder holds no connection.
func (s *Source) Close() error { return nil }

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
